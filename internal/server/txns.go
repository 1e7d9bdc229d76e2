package server

import (
	"sync"

	"samsa/internal/metadata"
	"samsa/internal/replica"
	"samsa/internal/txn"
)

// transactionStateTopic is the transaction coordinator's internal topic.
const transactionStateTopic = "__transaction_state"

// txnLoader keeps the transaction coordinator coordinating exactly the
// partitions of __transaction_state this node leads, as groupLoader does
// for __consumer_offsets. A new leader epoch reloads the partition: the
// coordinator epoch stamped on markers is the leader epoch, so markers of
// a deposed coordinator are fenced.
type txnLoader struct {
	self     int32
	replicas *replica.Manager
	txns     *txn.Coordinator

	mu     sync.Mutex
	loaded map[int32]ledPartition // partition id -> what was loaded; guarded by mu
}

func newTxnCoordinator(s *Server, markers txn.MarkerWriter) *txn.Coordinator {
	cfg := s.cfg
	return txn.New(txn.Config{
		NumPartitions:         cfg.TransactionStateLogNumPartitions,
		MaxTimeout:            cfg.TransactionMaxTimeout,
		IDExpiration:          cfg.TransactionalIDExpiration,
		AbortTimedOutInterval: cfg.TransactionAbortTimedOutInterval,
		RemoveExpiredInterval: cfg.TransactionRemoveExpiredInterval,
		AllocateProducerID:    s.ctrl.AllocateProducerID,
		Markers:               markers,
		Logger:                s.logger,
	})
}

// apply is the metadata listener.
func (t *txnLoader) apply(_, next *metadata.Image) {
	t.mu.Lock()
	defer t.mu.Unlock()
	syncLedPartitions(next, transactionStateTopic, t.self, t.replicas, t.loaded,
		func(p *replica.Partition, epoch int32) ledPartition { return ledPartition{p: p, epoch: epoch} },
		func(id int32, l ledPartition) {
			t.txns.Load(id, internalPartition{p: l.p, timeout: txnStateAppendTimeout}, l.epoch)
		},
		t.txns.Unload)
}
