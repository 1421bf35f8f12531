// containerd's own ttrpc server (Debian's golang-github-containerd-ttrpc-dev)
// answering grpc.health.v1.Health/Check over Go's TLS: the reference the
// billingd server is benchmarked against (docs/BENCHMARKS.md).
//
// Usage: ttrpc-go-server ADDR CA CERT KEY   (serves until killed)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/containerd/ttrpc"
)

type raw struct{ data []byte }

func (r *raw) Reset()                   { r.data = nil }
func (r *raw) String() string           { return "" }
func (r *raw) ProtoMessage()            {}
func (r *raw) Marshal() ([]byte, error) { return r.data, nil }
func (r *raw) Unmarshal(b []byte) error { r.data = append([]byte(nil), b...); return nil }

func main() {
	addr, caPath, certPath, keyPath := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		panic(err)
	}
	listener, err := tls.Listen("tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		panic(err)
	}
	server, err := ttrpc.NewServer()
	if err != nil {
		panic(err)
	}
	server.Register("grpc.health.v1.Health", map[string]ttrpc.Method{
		"Check": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var request raw
			if err := unmarshal(&request); err != nil {
				return nil, err
			}
			return &raw{data: []byte{0x08, 0x01}}, nil // HealthCheckResponse{status: SERVING}
		},
	})
	fmt.Println("listening", listener.Addr())
	if err := server.Serve(context.Background(), listener); err != nil {
		panic(err)
	}
}
