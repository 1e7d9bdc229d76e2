package config

import "math"

// kind is a config value type; the numbers are kmsg's ConfigType (used by
// DescribeConfigs v3+).
type kind int8

const (
	kBool     kind = 1
	kString   kind = 2
	kInt      kind = 3
	kShort    kind = 4
	kLong     kind = 5
	kDouble   kind = 6
	kList     kind = 7
	kPassword kind = 9
)

// key describes one known config key.
type key struct {
	kind kind
	def  string // Kafka's default ("" with null: no default)
	null bool   // the default is null
	doc  string
	// readOnly marks broker keys that can only be set in the file.
	readOnly bool
	// samsa marks keys that are Samsa's own (not Kafka's).
	samsa bool
	// ignored marks keys we accept (a Kafka file may carry them) but do
	// not act on; they are reported as read-only.
	ignored bool
}

const maxLong = "9223372036854775807"

// brokerKeys are the server.properties keys Samsa understands.
var brokerKeys = map[string]key{
	// Cluster (quorum, liveness, placement): docs/config.md.
	"cluster.id":                                      {kind: kString, null: true, doc: "Samsa: cluster id written to meta.properties when a log dir is formatted (kafka-storage format -t); unset: derived from controller.quorum.voters when they are several, else random.", readOnly: true, samsa: true},
	"controller.quorum.election.timeout.ms":           {kind: kInt, def: "500", doc: "Samsa: time without a leader before a voter starts an election (raft: 10 ticks of a tenth of it, randomized up to twice). Kafka's default is 1000; Samsa's 500 meets the 2 s failover goal.", readOnly: true},
	"metadata.log.max.record.bytes.between.snapshots": {kind: kLong, def: "20971520", doc: "Snapshot the metadata image once this many record bytes were appended since the last snapshot.", readOnly: true},
	"metadata.log.max.snapshot.interval.ms":           {kind: kLong, def: "3600000", doc: "Snapshot the metadata image at least this often when there are new records; 0 disables.", readOnly: true},
	"broker.session.timeout.ms":                       {kind: kInt, def: "9000", doc: "A broker that has not heartbeated the controller this long is fenced.", readOnly: true},
	"broker.heartbeat.interval.ms":                    {kind: kInt, def: "2000", doc: "How often a broker heartbeats the active controller.", readOnly: true},
	"broker.rack":                                     {kind: kString, null: true, doc: "Rack of this broker, used by rack-aware replica placement.", readOnly: true},
	"auto.leader.rebalance.enable":                    {kind: kBool, def: "true", doc: "The active controller moves leadership back to preferred replicas when a broker's share of partitions it prefers but does not lead exceeds leader.imbalance.per.broker.percentage.", readOnly: true},
	"leader.imbalance.check.interval.seconds":         {kind: kLong, def: "300", doc: "How often the active controller checks the leader imbalance (auto.leader.rebalance.enable).", readOnly: true},
	"leader.imbalance.per.broker.percentage":          {kind: kInt, def: "10", doc: "Share (percent) of a broker's preferred partitions led by another broker above which the controller elects their preferred leaders.", readOnly: true},
	// Node and listeners.
	"node.id":                                  {kind: kInt, def: "1", doc: "This node's id in the cluster.", readOnly: true},
	"broker.id":                                {kind: kInt, def: "-1", doc: "Legacy name of node.id.", readOnly: true},
	"process.roles":                            {kind: kList, def: "broker,controller", doc: "Roles of this node: broker, controller or both.", readOnly: true},
	"listeners":                                {kind: kString, def: "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", doc: "Listeners to bind, NAME://host:port.", readOnly: true},
	"advertised.listeners":                     {kind: kString, null: true, doc: "Listeners given to clients; defaults to listeners (with bound ports).", readOnly: true},
	"controller.listener.names":                {kind: kList, def: "CONTROLLER", doc: "Listener names used by the controller.", readOnly: true},
	"inter.broker.listener.name":               {kind: kString, null: true, doc: "Listener brokers use among themselves.", readOnly: true},
	"listener.security.protocol.map":           {kind: kString, def: "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", doc: "Listener name to security protocol.", readOnly: true},
	"controller.quorum.voters":                 {kind: kList, def: "", doc: "Controller quorum voters, id@host:port.", readOnly: true},
	"controller.quorum.bootstrap.servers":      {kind: kList, def: "", doc: "Controller quorum bootstrap servers.", readOnly: true, ignored: true},
	"log.dirs":                                 {kind: kString, null: true, doc: "Directories holding partition logs (comma separated).", readOnly: true},
	"log.dir":                                  {kind: kString, def: "./samsa-data", doc: "Directory holding partition logs when log.dirs is unset.", readOnly: true},
	"metadata.log.dir":                         {kind: kString, null: true, doc: "Directory of the metadata log; defaults to the first log dir.", readOnly: true},
	"num.partitions":                           {kind: kInt, def: "1", doc: "Default partition count of new topics.", readOnly: true},
	"default.replication.factor":               {kind: kInt, def: "1", doc: "Default replication factor of new topics.", readOnly: true},
	"min.insync.replicas":                      {kind: kInt, def: "1", doc: "Minimum ISR size for acks=all writes."},
	"auto.create.topics.enable":                {kind: kBool, def: "true", doc: "Create unknown topics on metadata requests.", readOnly: true},
	"delete.topic.enable":                      {kind: kBool, def: "true", doc: "Allow DeleteTopics.", readOnly: true},
	"message.max.bytes":                        {kind: kInt, def: "1048588", doc: "Largest record batch accepted (topic: max.message.bytes)."},
	"socket.request.max.bytes":                 {kind: kInt, def: "104857600", doc: "Largest request frame; larger frames close the connection.", readOnly: true},
	"queued.max.request.bytes":                 {kind: kLong, def: "134217728", doc: "Bound on the bytes of request frames being read or served over all connections; -1 (Kafka's unbounded) means the default. At least socket.request.max.bytes.", readOnly: true},
	"connections.max.idle.ms":                  {kind: kLong, def: "600000", doc: "Close connections idle this long.", readOnly: true},
	"max.connections":                          {kind: kInt, def: "10000", doc: "Most open connections over all listeners; at the limit listeners stop accepting until one closes."},
	"max.connections.per.ip":                   {kind: kInt, def: "1000", doc: "Most connections from one address; more are closed right after accept."},
	"max.connections.per.ip.overrides":         {kind: kString, def: "", doc: "Per-address max.connections.per.ip, ip:count,ip:count."},
	"socket.request.read.timeout.ms":           {kind: kLong, def: "30000", doc: "Samsa: close a connection that has not sent a whole request frame this long after its size (waiting for queued.max.request.bytes included).", readOnly: true, samsa: true},
	"fetch.max.bytes":                          {kind: kInt, def: "57671680", doc: "Largest fetch response the broker builds (the request's MaxBytes is capped by it; the first batch may exceed it, KIP-74).", readOnly: true},
	"socket.send.buffer.bytes":                 {kind: kInt, def: "102400", doc: "SO_SNDBUF of sockets (-1: OS default).", readOnly: true, ignored: true},
	"socket.receive.buffer.bytes":              {kind: kInt, def: "102400", doc: "SO_RCVBUF of sockets (-1: OS default).", readOnly: true, ignored: true},
	"num.network.threads":                      {kind: kInt, def: "3", doc: "Accepted for compatibility; Samsa uses goroutines per connection.", readOnly: true, ignored: true},
	"num.io.threads":                           {kind: kInt, def: "8", doc: "Accepted for compatibility; Samsa uses goroutines per connection.", readOnly: true, ignored: true},
	"num.recovery.threads.per.data.dir":        {kind: kInt, def: "2", doc: "Accepted for compatibility.", readOnly: true, ignored: true},
	"offsets.topic.replication.factor":         {kind: kShort, def: "3", doc: "Replication factor of __consumer_offsets; FindCoordinator answers COORDINATOR_NOT_AVAILABLE until that many brokers are live. 1 on a node without controller.quorum.voters unless set.", readOnly: true},
	"offsets.topic.num.partitions":             {kind: kInt, def: "50", doc: "Partitions of __consumer_offsets.", readOnly: true},
	"transaction.state.log.replication.factor": {kind: kShort, def: "3", doc: "Replication factor of __transaction_state; FindCoordinator answers COORDINATOR_NOT_AVAILABLE until that many brokers are live. 1 on a node without controller.quorum.voters unless set.", readOnly: true},
	"transaction.state.log.min.isr":            {kind: kInt, def: "2", doc: "min.insync.replicas of __transaction_state (capped by its replication factor). 1 on a node without controller.quorum.voters unless set.", readOnly: true},
	"transaction.state.log.num.partitions":     {kind: kInt, def: "50", doc: "Partitions of __transaction_state.", readOnly: true},
	"transaction.state.log.segment.bytes":      {kind: kInt, def: "104857600", doc: "segment.bytes of __transaction_state.", readOnly: true},
	"transaction.max.timeout.ms":               {kind: kInt, def: "900000", doc: "Largest transaction.timeout.ms a producer may ask for.", readOnly: true},
	"transactional.id.expiration.ms":           {kind: kInt, def: "604800000", doc: "How long a transactional id without transaction in progress is kept after its last update.", readOnly: true},
	"transaction.abort.timed.out.transaction.cleanup.interval.ms": {kind: kInt, def: "10000", doc: "How often transactions past their timeout are aborted.", readOnly: true},
	"transaction.remove.expired.transaction.cleanup.interval.ms":  {kind: kInt, def: "3600000", doc: "How often expired transactional ids are removed.", readOnly: true},
	"group.initial.rebalance.delay.ms":                            {kind: kInt, def: "3000", doc: "Delay of the first rebalance of a new group.", readOnly: true},
	"group.min.session.timeout.ms":                                {kind: kInt, def: "6000", doc: "Smallest session.timeout.ms a group member may ask for.", readOnly: true},
	"group.max.session.timeout.ms":                                {kind: kInt, def: "1800000", doc: "Largest session.timeout.ms a group member may ask for.", readOnly: true},
	"group.max.size":                                              {kind: kInt, def: "2147483647", doc: "Most members a classic group may have.", readOnly: true},
	"offset.metadata.max.bytes":                                   {kind: kInt, def: "4096", doc: "Largest metadata string of a committed offset.", readOnly: true},
	"offsets.retention.minutes":                                   {kind: kInt, def: "10080", doc: "Minutes committed offsets are kept once their group is Empty (or after the commit, for standalone commits and unsubscribed topics).", readOnly: true},
	"offsets.retention.check.interval.ms":                         {kind: kLong, def: "600000", doc: "How often expired committed offsets are removed.", readOnly: true},
	"offsets.topic.segment.bytes":                                 {kind: kInt, def: "104857600", doc: "segment.bytes of __consumer_offsets.", readOnly: true},
	"log.retention.hours":                                         {kind: kInt, def: "168", doc: "Retention time in hours (retention.ms).", readOnly: true},
	"log.retention.minutes":                                       {kind: kInt, null: true, doc: "Retention time in minutes (retention.ms).", readOnly: true},
	"log.retention.ms":                                            {kind: kLong, null: true, doc: "Retention time in ms (retention.ms); -1 keeps forever."},
	"log.retention.bytes":                                         {kind: kLong, def: "-1", doc: "Retention size per partition (retention.bytes)."},
	"log.retention.check.interval.ms":                             {kind: kLong, def: "300000", doc: "How often retention runs.", readOnly: true},
	"log.segment.bytes":                                           {kind: kInt, def: "1073741824", doc: "Segment size (segment.bytes)."},
	"log.roll.hours":                                              {kind: kInt, def: "168", doc: "Segment age before roll, hours (segment.ms).", readOnly: true},
	"log.roll.ms":                                                 {kind: kLong, null: true, doc: "Segment age before roll, ms (segment.ms)."},
	"log.roll.jitter.hours":                                       {kind: kInt, def: "0", doc: "Largest random jitter subtracted from segment.ms, hours (segment.jitter.ms).", readOnly: true},
	"log.roll.jitter.ms":                                          {kind: kLong, null: true, doc: "Largest random jitter subtracted from segment.ms, ms (segment.jitter.ms)."},
	"log.dir.full.check.interval.ms":                              {kind: kLong, def: "1000", doc: "Samsa: how often a log dir that ran out of space is probed for free space.", readOnly: true, samsa: true},
	"log.dir.full.resume.bytes":                                   {kind: kLong, def: "1048576", doc: "Samsa: free bytes that bring a full log dir back online (appends resume).", readOnly: true, samsa: true},
	"log.index.interval.bytes":                                    {kind: kInt, def: "4096", doc: "Bytes between offset index entries (index.interval.bytes)."},
	"log.index.size.max.bytes":                                    {kind: kInt, def: "10485760", doc: "Maximum index file size (segment.index.bytes)."},
	"log.flush.interval.messages":                                 {kind: kLong, def: maxLong, doc: "Messages before an fsync (flush.messages)."},
	"log.flush.interval.ms":                                       {kind: kLong, null: true, doc: "Time before an fsync (flush.ms)."},
	"log.flush.scheduler.interval.ms":                             {kind: kLong, def: maxLong, doc: "How often the flusher checks logs.", ignored: true, readOnly: true},
	"log.flush.offset.checkpoint.interval.ms":                     {kind: kInt, def: "60000", doc: "How often checkpoints are written.", readOnly: true},
	"log.cleanup.policy":                                          {kind: kList, def: "delete", doc: "Default cleanup.policy."},
	"log.cleaner.enable":                                          {kind: kBool, def: "true", doc: "Run the log cleaner.", readOnly: true},
	"log.cleaner.backoff.ms":                                      {kind: kLong, def: "15000", doc: "How long the log cleaner sleeps when no log is cleanable.", readOnly: true},
	"log.cleaner.delete.retention.ms":                             {kind: kLong, def: "86400000", doc: "Tombstone retention (delete.retention.ms)."},
	"log.cleaner.min.cleanable.ratio":                             {kind: kDouble, def: "0.5", doc: "min.cleanable.dirty.ratio default."},
	"log.cleaner.min.compaction.lag.ms":                           {kind: kLong, def: "0", doc: "min.compaction.lag.ms default."},
	"log.cleaner.max.compaction.lag.ms":                           {kind: kLong, def: maxLong, doc: "max.compaction.lag.ms default."},
	"log.message.timestamp.type":                                  {kind: kString, def: "CreateTime", doc: "message.timestamp.type default."},
	"log.preallocate":                                             {kind: kBool, def: "false", doc: "preallocate default.", ignored: true, readOnly: true},
	"log.segment.delete.delay.ms":                                 {kind: kLong, def: "60000", doc: "file.delete.delay.ms default."},
	"compression.type":                                            {kind: kString, def: "producer", doc: "Default compression.type of topics."},
	"compression.gzip.level":                                      {kind: kInt, def: "-1", doc: "Default compression.gzip.level of topics."},
	"compression.lz4.level":                                       {kind: kInt, def: "9", doc: "Default compression.lz4.level of topics."},
	"compression.zstd.level":                                      {kind: kInt, def: "3", doc: "Default compression.zstd.level of topics."},
	"log.message.timestamp.before.max.ms":                         {kind: kLong, def: maxLong, doc: "message.timestamp.before.max.ms default."},
	"log.message.timestamp.after.max.ms":                          {kind: kLong, def: "3600000", doc: "message.timestamp.after.max.ms default."},
	"message.max.decompressed.bytes":                              {kind: kLong, def: "-1", doc: "Samsa: largest decompressed size of one compressed record batch; a batch inflating beyond it is refused with INVALID_RECORD. -1: the larger of 64 MiB and 32 times the topic's max.message.bytes, at most 256 MiB.", samsa: true, readOnly: true},
	"unclean.leader.election.enable":                              {kind: kBool, def: "false", doc: "Allow out-of-ISR leader election."},
	"replica.lag.time.max.ms":                                     {kind: kLong, def: "30000", doc: "Follower lag before leaving the ISR.", readOnly: true},
	"num.replica.fetchers":                                        {kind: kInt, def: "1", doc: "Fetcher goroutines (each with its own connection) per leader broker this broker follows partitions of."},
	"replica.fetch.wait.max.ms":                                   {kind: kInt, def: "500", doc: "Longest a follower's fetch waits at the leader for data; below replica.lag.time.max.ms.", readOnly: true},
	"replica.fetch.min.bytes":                                     {kind: kInt, def: "1", doc: "Bytes a follower's fetch waits for at the leader.", readOnly: true},
	"replica.fetch.max.bytes":                                     {kind: kInt, def: "1048576", doc: "Bytes a follower fetches per partition per request (a larger first batch still comes whole).", readOnly: true},
	"replica.fetch.response.max.bytes":                            {kind: kInt, def: "10485760", doc: "Bytes a follower asks for per fetch response.", readOnly: true},
	"replica.fetch.backoff.ms":                                    {kind: kInt, def: "1000", doc: "How long a follower waits after a fetch error before fetching the partition again.", readOnly: true},
	"replica.selector.class":                                      {kind: kString, null: true, doc: "Chooses a consumer's preferred read replica (KIP-392): unset, only the leader serves consumers it is asked by; org.apache.kafka.common.replica.RackAwareReplicaSelector directs a consumer with client.rack to an in-sync replica in its rack.", readOnly: true},
	"replica.socket.timeout.ms":                                   {kind: kInt, def: "30000", doc: "Bound of each follower fetch request; at least replica.fetch.wait.max.ms.", readOnly: true},
	"http.listener":                                               {kind: kString, def: "127.0.0.1:8080", doc: "Samsa: address of the HTTP listener: the read-only web console at /, Prometheus /metrics and /healthz; empty disables.", readOnly: true, samsa: true},
	"gc.min.heap.bytes":                                           {kind: kLong, def: "67108864", doc: "Samsa: floor under the Go garbage collector's heap goal: after each collection the GC percentage is raised so the next collection waits until the heap reaches at least this size (never below GOGC=100); 0 disables. GOGC or GOMEMLIMIT in the environment turn it off.", readOnly: true, samsa: true},
	"max.incremental.fetch.session.cache.slots":                   {kind: kInt, def: "1000", doc: "Fetch sessions (KIP-227) the broker keeps; 0 turns them off.", readOnly: true},
	"min.incremental.fetch.session.eviction.ms":                   {kind: kInt, def: "120000", doc: "Age before a fetch session may be evicted for a larger one; an idle session older than this is evicted first.", readOnly: true},
	// Replication throttles (KIP-73): dynamic in Kafka, usually set per
	// broker. Stored and described; enforced by the reassignment
	// throttle (docs/config.md "Dynamic broker configs").
	"leader.replication.throttled.rate":              {kind: kLong, def: maxLong, doc: "Bytes/s a leader may send to throttled followers (topic leader.replication.throttled.replicas)."},
	"follower.replication.throttled.rate":            {kind: kLong, def: maxLong, doc: "Bytes/s a follower may fetch for throttled replicas (topic follower.replication.throttled.replicas)."},
	"replica.alter.log.dirs.io.max.bytes.per.second": {kind: kLong, def: maxLong, doc: "Bytes/s of replica moves between log dirs (AlterReplicaLogDirs)."},
	// The sliding window the replication throttles are measured over
	// (Kafka's ReplicationQuotaManagerConfig).
	"replication.quota.window.num":          {kind: kInt, def: "11", doc: "Samples kept by the replication throttles' rate (leader/follower.replication.throttled.rate).", readOnly: true},
	"replication.quota.window.size.seconds": {kind: kInt, def: "1", doc: "Time span of each sample of the replication throttles' rate.", readOnly: true},
}

// topicKey is a topic-level config with the broker key that sets its
// default (Kafka's "synonym").
type topicKey struct {
	key
	broker string // broker synonym; "" when none
}

// topicKeys are the topic-level configs (Kafka's TopicConfig).
var topicKeys = map[string]topicKey{
	"cleanup.policy":                  {key{kind: kList, def: "delete", doc: "delete, compact or both."}, "log.cleanup.policy"},
	"compression.type":                {key{kind: kString, def: "producer", doc: "Final compression of the topic: producer keeps the producer's codec; uncompressed, gzip, snappy, lz4 or zstd make the broker recompress batches in another codec."}, "compression.type"},
	"compression.gzip.level":          {key{kind: kInt, def: "-1", doc: "Level of gzip when compression.type=gzip (1-9, -1 default)."}, "compression.gzip.level"},
	"compression.lz4.level":           {key{kind: kInt, def: "9", doc: "Level of lz4 when compression.type=lz4 (1-17)."}, "compression.lz4.level"},
	"compression.zstd.level":          {key{kind: kInt, def: "3", doc: "Level of zstd when compression.type=zstd (-131072-22)."}, "compression.zstd.level"},
	"delete.retention.ms":             {key{kind: kLong, def: "86400000", doc: "Tombstone retention for compacted topics."}, "log.cleaner.delete.retention.ms"},
	"file.delete.delay.ms":            {key{kind: kLong, def: "60000", doc: "Delay before a deleted segment's file is removed."}, "log.segment.delete.delay.ms"},
	"flush.messages":                  {key{kind: kLong, def: maxLong, doc: "Messages appended before an fsync (1: fsync before acknowledging)."}, "log.flush.interval.messages"},
	"flush.ms":                        {key{kind: kLong, def: maxLong, doc: "Time before an fsync."}, "log.flush.interval.ms"},
	"index.interval.bytes":            {key{kind: kInt, def: "4096", doc: "Bytes between offset index entries."}, "log.index.interval.bytes"},
	"max.compaction.lag.ms":           {key{kind: kLong, def: maxLong, doc: "Longest time a record stays uncompacted."}, "log.cleaner.max.compaction.lag.ms"},
	"max.message.bytes":               {key{kind: kInt, def: "1048588", doc: "Largest record batch accepted."}, "message.max.bytes"},
	"message.timestamp.type":          {key{kind: kString, def: "CreateTime", doc: "CreateTime or LogAppendTime."}, "log.message.timestamp.type"},
	"min.cleanable.dirty.ratio":       {key{kind: kDouble, def: "0.5", doc: "Dirty ratio that makes a log cleanable."}, "log.cleaner.min.cleanable.ratio"},
	"min.compaction.lag.ms":           {key{kind: kLong, def: "0", doc: "Shortest time a record stays uncompacted."}, "log.cleaner.min.compaction.lag.ms"},
	"min.insync.replicas":             {key{kind: kInt, def: "1", doc: "Minimum ISR size for acks=all writes."}, "min.insync.replicas"},
	"preallocate":                     {key{kind: kBool, def: "false", doc: "Preallocate segment files (not acted on)."}, "log.preallocate"},
	"retention.bytes":                 {key{kind: kLong, def: "-1", doc: "Retention size per partition; -1 unlimited."}, "log.retention.bytes"},
	"retention.ms":                    {key{kind: kLong, def: "604800000", doc: "Retention time; -1 forever."}, "log.retention.ms"},
	"segment.bytes":                   {key{kind: kInt, def: "1073741824", doc: "Segment size."}, "log.segment.bytes"},
	"segment.index.bytes":             {key{kind: kInt, def: "10485760", doc: "Maximum index file size."}, "log.index.size.max.bytes"},
	"segment.jitter.ms":               {key{kind: kLong, def: "0", doc: "Random jitter subtracted from segment.ms."}, "log.roll.jitter.ms"},
	"segment.ms":                      {key{kind: kLong, def: "604800000", doc: "Segment age before roll."}, "log.roll.ms"},
	"unclean.leader.election.enable":  {key{kind: kBool, def: "false", doc: "Allow out-of-ISR leader election."}, "unclean.leader.election.enable"},
	"message.timestamp.before.max.ms": {key{kind: kLong, def: maxLong, doc: "How far in the past a CreateTime record timestamp may be (INVALID_TIMESTAMP beyond)."}, "log.message.timestamp.before.max.ms"},
	"message.timestamp.after.max.ms":  {key{kind: kLong, def: "3600000", doc: "How far in the future a CreateTime record timestamp may be (INVALID_TIMESTAMP beyond)."}, "log.message.timestamp.after.max.ms"},
	// Replication throttles (KIP-73): which replicas the brokers'
	// leader/follower.replication.throttled.rate apply to.
	"leader.replication.throttled.replicas":   {key{kind: kList, def: "", doc: "Replicas throttled on the leader side: partition:broker pairs (the brokers whose leadership of the partition is throttled) or * for all."}, ""},
	"follower.replication.throttled.replicas": {key{kind: kList, def: "", doc: "Replicas throttled on the follower side: partition:broker pairs (the brokers whose follower of the partition is throttled) or * for all."}, ""},
}

var _ = math.MaxInt64
