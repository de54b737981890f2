// Command etcd-embed runs a single-member etcd (go.etcd.io/etcd/server/v3/embed, the
// version k8s.io/kubernetes v1.37.2 requires) for the one-node test cluster of
// __test__/k8s-e2e.test.ts. etcd's own main module carries replace directives, so it
// cannot be installed from the module proxy; this wrapper can.
package main

import (
	"flag"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for etcd's data (required)")
	client := flag.String("listen-client", "http://127.0.0.1:2379", "client URL (loopback)")
	peer := flag.String("listen-peer", "http://127.0.0.1:2380", "peer URL (loopback)")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("etcd-embed: --data-dir is required")
	}
	cu, err := url.Parse(*client)
	if err != nil {
		log.Fatalf("etcd-embed: --listen-client %q: %v", *client, err)
	}
	pu, err := url.Parse(*peer)
	if err != nil {
		log.Fatalf("etcd-embed: --listen-peer %q: %v", *peer, err)
	}
	cfg := embed.NewConfig()
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.LogLevel = "warn"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("etcd-embed: start: %v", err)
	}
	defer e.Close()
	<-e.Server.ReadyNotify()
	log.Printf("etcd-embed: ready on %s (data %s)", cu, *dataDir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Printf("etcd-embed: %v, stopping", s)
	case err := <-e.Err():
		log.Fatalf("etcd-embed: %v", err)
	}
}
