// Package server is the composition root: it turns a configuration into
// running components (storage, metadata, controller, replica manager,
// listeners) and starts and stops them in order.
package server

import (
	"context"
	"log/slog"
)

// Options configure a node.
type Options struct {
	ConfigFile string       // server.properties path; "" for the single-node defaults
	Overrides  []string     // "key=value" (-o), applied after the file
	Logger     *slog.Logger // nil: slog.Default()
}

// Server is a running node.
type Server struct{}

// Start formats (first start) or recovers the data directories and starts
// every component. Each bound listener is logged as
// `msg="listener bound" listener=NAME addr=HOST:PORT`.
func Start(ctx context.Context, opts Options) (*Server, error) { panic("unimplemented") }

// KafkaAddr is the bound address of the first broker listener.
func (s *Server) KafkaAddr() string { panic("unimplemented") }

// Close shuts down cleanly: stop listeners, flush, checkpoints,
// clean-shutdown marker.
func (s *Server) Close() error { panic("unimplemented") }

// Run starts a node and blocks until ctx is done, then closes it.
func Run(ctx context.Context, opts Options) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
