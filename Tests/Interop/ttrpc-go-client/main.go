// A stock ttrpc client (containerd/ttrpc from Debian's
// golang-github-containerd-ttrpc-dev) calling billingd over TLS with Go's own
// crypto/tls: proof that a client which knows only ttrpc can call billingd.
//
// Usage: ttrpc-go-client ADDR CA CERT KEY SERVER_NAME SERVICE METHOD HEX_PAYLOAD
// Prints "ok <hex response payload>" or "error <grpc code> <message>", exit 0;
// exits 1 when it cannot connect at all.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/status"
)

// raw carries bytes through ttrpc's gogo codec unchanged.
type raw struct{ data []byte }

func (r *raw) Reset()                   { r.data = nil }
func (r *raw) String() string           { return hex.EncodeToString(r.data) }
func (r *raw) ProtoMessage()            {}
func (r *raw) Marshal() ([]byte, error) { return r.data, nil }
func (r *raw) Unmarshal(b []byte) error { r.data = append([]byte(nil), b...); return nil }

func main() {
	if len(os.Args) != 9 {
		fmt.Fprintln(os.Stderr, "usage: ttrpc-go-client ADDR CA CERT KEY SERVER_NAME SERVICE METHOD HEX_PAYLOAD")
		os.Exit(2)
	}
	addr, caPath, certPath, keyPath, serverName := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	service, method := os.Args[6], os.Args[7]
	payload, err := hex.DecodeString(os.Args[8])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad payload:", err)
		os.Exit(2)
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = ttrpc.WithMetadata(ctx, ttrpc.MD{"request-id": []string{"go-interop"}})
	resp := &raw{}
	if err := client.Call(ctx, service, method, &raw{data: payload}, resp); err != nil {
		st, _ := status.FromError(err)
		fmt.Printf("error %d %s\n", int(st.Code()), st.Message())
		return
	}
	fmt.Printf("ok %s\n", hex.EncodeToString(resp.data))
}
