package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// runEtcd serves a single-member etcd until SIGTERM or SIGINT.
func runEtcd(args []string) int {
	fs := flag.NewFlagSet("etcd", flag.ExitOnError)
	dataDir := fs.String("data-dir", "", "directory holding the member's data")
	client := fs.String("listen-client", "", "host:port for clients")
	peer := fs.String("listen-peer", "", "host:port for the (unused) peer listener")
	_ = fs.Parse(args)
	if *dataDir == "" || *client == "" || *peer == "" {
		fmt.Fprintln(os.Stderr, "etcd: --data-dir, --listen-client and --listen-peer are required")
		return 2
	}
	clientURL := url.URL{Scheme: "http", Host: *client}
	peerURL := url.URL{Scheme: "http", Host: *peer}

	cfg := embed.NewConfig()
	cfg.Name = "berth"
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// At "warn" etcd logs a line for nearly every request the apiserver makes.
	cfg.LogLevel = "error"
	// The cluster is disposable test infrastructure: skipping fsync makes every
	// write several times faster on a shared disk, and a crash only loses a
	// cluster that `up` would recreate anyway.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	}
	defer e.Close()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	case <-stop:
		return 0
	}
	select {
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	case <-stop:
		return 0
	}
}

// runEtcdGet prints the raw stored value of one etcd key, so that tests can
// check what the apiserver really wrote (for example that Secrets are
// encrypted at rest).
func runEtcdGet(args []string) int {
	fs := flag.NewFlagSet("etcdget", flag.ExitOnError)
	dir := fs.String("dir", defaultClusterDir, "cluster state directory")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: berth-cluster etcdget [--dir DIR] KEY")
		return 2
	}
	value, err := etcdGet(*dir, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdget:", err)
		return 1
	}
	_, _ = os.Stdout.Write(value)
	return 0
}

func etcdGet(dir, key string) ([]byte, error) {
	endpoint, err := os.ReadFile(clusterPath(dir, "etcd-endpoint"))
	if err != nil {
		return nil, fmt.Errorf("cluster not started? %w", err)
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{strings.TrimSpace(string(endpoint))},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, errors.New("no such key: " + key)
	}
	return resp.Kvs[0].Value, nil
}
