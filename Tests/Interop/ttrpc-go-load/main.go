// A closed-loop load generator built on the stock ttrpc client
// (containerd/ttrpc from Debian's golang-github-containerd-ttrpc-dev) over
// Go's crypto/tls: the same client measures billingd and containerd's own Go
// ttrpc server (deploy/bench-peer, docs/BENCHMARKS.md).
//
// Usage: ttrpc-go-load ADDR CA CERT KEY SERVER_NAME SERVICE METHOD HEX_PAYLOAD CONNECTIONS IN_FLIGHT SECONDS
//
// CONNECTIONS connections, each with IN_FLIGHT callers that call again as
// soon as an answer arrives, for SECONDS after a warm-up of a tenth of that.
// Prints one line: "calls N per_second R p50_us A p99_us B errors E".
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/ttrpc"
)

// raw carries bytes through ttrpc's gogo codec unchanged.
type raw struct{ data []byte }

func (r *raw) Reset()                   { r.data = nil }
func (r *raw) String() string           { return hex.EncodeToString(r.data) }
func (r *raw) ProtoMessage()            {}
func (r *raw) Marshal() ([]byte, error) { return r.data, nil }
func (r *raw) Unmarshal(b []byte) error { r.data = append([]byte(nil), b...); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 12 {
		fail("usage: ttrpc-go-load ADDR CA CERT KEY SERVER_NAME SERVICE METHOD HEX_PAYLOAD CONNECTIONS IN_FLIGHT SECONDS")
	}
	addr, caPath, certPath, keyPath, serverName := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	service, method := os.Args[6], os.Args[7]
	payload, err := hex.DecodeString(os.Args[8])
	if err != nil {
		fail("bad payload: %v", err)
	}
	connections, err1 := strconv.Atoi(os.Args[9])
	inFlight, err2 := strconv.Atoi(os.Args[10])
	seconds, err3 := strconv.ParseFloat(os.Args[11], 64)
	if err1 != nil || err2 != nil || err3 != nil || connections < 1 || inFlight < 1 || seconds <= 0 {
		fail("CONNECTIONS and IN_FLIGHT are positive integers, SECONDS a positive number")
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		fail("%v", err)
	}
	config := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: serverName, MinVersion: tls.VersionTLS12}

	var measuring atomic.Bool
	var errors atomic.Int64
	var stop atomic.Bool
	var mu sync.Mutex
	var latencies []time.Duration
	var wait sync.WaitGroup
	for c := 0; c < connections; c++ {
		conn, err := tls.Dial("tcp", addr, config)
		if err != nil {
			fail("dial: %v", err)
		}
		client := ttrpc.NewClient(conn)
		defer client.Close()
		for i := 0; i < inFlight; i++ {
			wait.Add(1)
			go func() {
				defer wait.Done()
				mine := make([]time.Duration, 0, 1<<16)
				for !stop.Load() {
					started := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := client.Call(ctx, service, method, &raw{data: payload}, &raw{})
					cancel()
					if !measuring.Load() {
						continue
					}
					if err != nil {
						errors.Add(1)
						continue
					}
					mine = append(mine, time.Since(started))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
		}
	}
	time.Sleep(time.Duration(seconds * 0.1 * float64(time.Second)))
	measuring.Store(true)
	began := time.Now()
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	measuring.Store(false)
	elapsed := time.Since(began)
	stop.Store(true)
	wait.Wait()
	if len(latencies) == 0 {
		fail("no call succeeded (%d errors)", errors.Load())
	}
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	quantile := func(q float64) int64 { return latencies[int(q*float64(len(latencies)-1))].Microseconds() }
	fmt.Printf("calls %d per_second %.0f p50_us %d p99_us %d errors %d\n",
		len(latencies), float64(len(latencies))/elapsed.Seconds(), quantile(0.50), quantile(0.99), errors.Load())
}
