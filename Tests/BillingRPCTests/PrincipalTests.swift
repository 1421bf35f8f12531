import BillingAPI
import BillingRPC
import Testing

@Suite struct PrincipalTests {
    @Test func rolesComeFromBillingURIs() {
        #expect(
            Principal(peer: PeerIdentity(commonName: "x", uris: ["billing://internal/provisioning"]))
                == Principal(role: .internalService, name: "provisioning")
        )
        #expect(
            Principal(peer: PeerIdentity(commonName: "x", uris: ["billing://account/acc_1"]))
                == Principal(role: .account("acc_1"), name: "acc_1")
        )
        #expect(
            Principal(peer: PeerIdentity(commonName: "x", uris: ["spiffe://other", "billing://operator/alice"]))
                == Principal(role: .operator, name: "alice")
        )
    }

    @Test func anythingElseGrantsNothing() {
        for uris in [
            [], ["billing://root/x"], ["billing://account/"], ["billing://account/a/b"], ["https://account/x"],
            ["billing://internal"],
        ] {
            #expect(Principal(peer: PeerIdentity(commonName: "billing://operator/alice", uris: uris)) == nil, "\(uris)")
        }
    }

    @Test func aURIWithANewlineIsNotReadAsTwoURIs() {
        // The C shim once joined URIs with "\n" and Swift split them again.
        let peer = PeerIdentity(commonName: "x", uris: ["https://x.example/\nbilling://internal/evil"])
        #expect(Principal(peer: peer) == nil)
        #expect(Principal.refusal(peer)?.contains("control") == true)
    }

    @Test func anyURIWithControlFormatOrNonASCIICharactersRefusesTheCertificate() {
        for bad in [
            "https://x/\u{0}", "https://x/\r", "https://x/\t", "https://x/\u{7F}", "https://x/\u{85}",
            "https://x/\u{202E}",
            "https://x/ a", "https://ä.example/",
        ] {
            #expect(
                Principal(peer: PeerIdentity(commonName: "x", uris: [bad, "billing://internal/svc"])) == nil,
                "\(bad.debugDescription)"
            )
        }
        #expect(Principal(peer: PeerIdentity(commonName: "x", uris: ["billing://internal/svc\u{0}"])) == nil)
    }

    @Test func twoBillingURIsAreRefusedNotFirstWins() {
        for uris in [
            ["billing://operator/alice", "billing://internal/evil"], ["billing://internal/a", "billing://internal/a"],
            ["billing://account/a", "BILLING://internal/b"], ["Billing://internal/x"],
        ] {
            let peer = PeerIdentity(commonName: "x", uris: uris)
            #expect(Principal(peer: peer) == nil, "\(uris)")
            #expect(Principal.refusal(peer) != nil)
        }
    }

    @Test func namesFollowTheIdRule() {
        #expect(
            Principal(
                peer: PeerIdentity(commonName: "x", uris: ["billing://account/" + String(repeating: "a", count: 64)])
            ) != nil
        )
        for name in [String(repeating: "a", count: 65), "a%2Fb", "a?b", "a#b", "a:b", "a@b"] {
            #expect(
                Principal(peer: PeerIdentity(commonName: "x", uris: ["billing://account/\(name)"])) == nil,
                "\(name)"
            )
        }
    }
}
