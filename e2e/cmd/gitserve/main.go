// Command gitserve serves a folder as a Git repository over HTTP on loopback, for the
// demo: `gitserve -dir examples/workplace -addr 127.0.0.1:8999` makes
// http://127.0.0.1:8999/workplace.git with one commit of the folder, branch main,
// and accepts pushes. It runs until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
)

func main() {
	dir := flag.String("dir", "examples/workplace", "folder to serve as the repository's first commit")
	addr := flag.String("addr", "127.0.0.1:8999", "address to listen on")
	root := flag.String("root", "", "directory holding the served repositories (default: a temporary one)")
	flag.Parse()
	if err := run(*dir, *addr, *root); err != nil {
		fmt.Fprintln(os.Stderr, "gitserve:", err)
		os.Exit(1)
	}
}

func run(dir, addr, root string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if root == "" {
		tmp, err := os.MkdirTemp("", "platzwart-gitserve-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	srv := gittestserver.NewGitServer(root).AutoCreate()
	if _, err := os.Stat(filepath.Join(root, "workplace.git")); os.IsNotExist(err) {
		if err := srv.InitRepo(dir, "main", "workplace.git"); err != nil {
			return fmt.Errorf("creating the repository from %s: %w", dir, err)
		}
		// Clones check out main (InitRepo leaves HEAD at master).
		if err := os.WriteFile(filepath.Join(root, "workplace.git", "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	service := gitkit.New(gitkit.Config{Dir: root, AutoCreate: true})
	if err := service.Setup(); err != nil {
		return err
	}
	h := &http.Server{Handler: service, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = h.Close() }()
	fmt.Printf("http://%s/workplace.git\n", l.Addr())
	if err := h.Serve(l); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
