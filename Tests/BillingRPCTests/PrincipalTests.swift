import BillingRPC
import Testing

@Suite struct PrincipalTests {
    @Test func rolesComeFromBillingURIs() {
        #expect(Principal(peer: PeerIdentity(commonName: "x", uris: ["billing://internal/provisioning"])) == Principal(role: .internalService, name: "provisioning"))
        #expect(Principal(peer: PeerIdentity(commonName: "x", uris: ["billing://account/acc_1"])) == Principal(role: .account("acc_1"), name: "acc_1"))
        #expect(Principal(peer: PeerIdentity(commonName: "x", uris: ["spiffe://other", "billing://operator/alice"])) == Principal(role: .operator, name: "alice"))
    }

    @Test func anythingElseGrantsNothing() {
        for uris in [[], ["billing://root/x"], ["billing://account/"], ["billing://account/a/b"], ["https://account/x"], ["billing://internal"]] {
            #expect(Principal(peer: PeerIdentity(commonName: "billing://operator/alice", uris: uris)) == nil, "\(uris)")
        }
    }
}
