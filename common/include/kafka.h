/* kafka: the suite's use of librdkafka (and the only module that calls it).
 *
 * - One idempotent producer per process, with its own poll thread (delivery reports only fire
 *   inside rd_kafka_poll).  Messages are retried by librdkafka until the broker takes them, in
 *   order per partition: a broker outage of any length only delays them.  The outbox publisher
 *   (outbox.h) sends through it in batches, the consumer's dead letters one by one.
 * - The consumer helper: a thread that hands each message to a handler and stores its offset
 *   only after the handler reports that its database transaction committed; messages the
 *   handler cannot parse are copied to "<topic>.dlq" (once, however often the message comes
 *   again while its copy waits for the broker) and skipped; transient failures are retried.
 * - A replay: one topic read once from the start up to where it ended when the replay began,
 *   every message handed to a consumer's handler, outside any consumer group (kafka_replay()).
 * - The security settings (TLS, SASL) that every producer and consumer gets: kafka_configure().
 *
 * All functions are thread-safe unless noted. */
#ifndef KAFKA_H
#define KAFKA_H

#include <stdbool.h>
#include <stddef.h>

struct kafka_producer;
struct kafka_consumer;

/* A librdkafka property that every producer and consumer gets (kafka_configure()). */
struct kafka_property {
	const char *name;  /* e.g. "security.protocol" */
	const char *value; /* NULL or "" = not set: librdkafka's default applies */
	bool secret;       /* a password: its value never appears in an error or a log line */
};

/* Sets the properties that every producer and consumer created afterwards gets on top of the
 * suite's own settings: the connection's security (security.protocol, sasl.*, ssl.*).  props is
 * borrowed and must outlive every client.  Logs one line naming the properties set (values of
 * secret ones left out).  Call before threads start; not thread-safe.  A value librdkafka
 * refuses makes kafka_producer_new() / kafka_consumer_start() fail (the error names the
 * property, and shows librdkafka's reason only for a property that is not secret). */
void kafka_configure(const struct kafka_property *props, size_t n);

/* Creates the producer and starts its poll thread.  brokers: "host:port,…".  NULL + err on
 * failure (bad configuration). */
struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, char *err,
                                          size_t errlen);
/* Waits up to timeout_ms for queued messages, then stops the poll thread and frees. */
void kafka_producer_free(struct kafka_producer *p, int timeout_ms);
/* Asks the broker for metadata (bounded by timeout_ms): true when it answered. */
bool kafka_producer_ping(struct kafka_producer *p, int timeout_ms);
/* The value of librdkafka property name as the producer / consumer uses it, into out (NUL-
 * terminated); false when unknown or out is too small.  For diagnostics and tests. */
bool kafka_producer_setting(struct kafka_producer *p, const char *name, char *out, size_t outlen);
bool kafka_consumer_setting(struct kafka_consumer *c, const char *name, char *out, size_t outlen);
/* Produces one message and waits for its delivery report (bounded by timeout_ms).  Returns true
 * when the broker acknowledged it; after a timeout the message may still be delivered later.
 * The outbox publisher uses kafka_produce_batch() instead. */
bool kafka_produce_sync(struct kafka_producer *p, const char *topic, const char *key, size_t keylen,
                        const void *value, size_t len, int timeout_ms);

/* One message of kafka_produce_batch(): the inputs are borrowed for the call's duration. */
struct kafka_message {
	const char *topic;
	const char *key;
	size_t keylen;
	const void *value;
	size_t len;
	bool delivered;    /* out: the broker acknowledged it */
	const char *error; /* out: why not, when produced but not delivered (static text) */
};

/* Produces msgs[0..n) in order and waits for every delivery report, as long as the broker needs
 * (a broker outage blocks the call); once *stop (may be NULL) becomes true it waits one more
 * second and then purges what is still queued in the whole producer (so stop only at
 * shutdown), which then counts as not delivered.  When
 * librdkafka refuses a message, the batch ends there so that the order is kept.  Returns how
 * many messages were produced (a prefix of msgs; 0 when out of memory); each one's delivered
 * says whether the broker acknowledged it. */
size_t kafka_produce_batch(struct kafka_producer *p, struct kafka_message *msgs, size_t n,
                           const _Atomic bool *stop);

enum kafka_handled {
	KAFKA_APPLIED, /* committed (or nothing to do): store the offset */
	KAFKA_RETRY,   /* transient failure (database down): deliver the same message again */
	KAFKA_POISON,  /* cannot be parsed or applied ever: copy to <topic>.dlq, then skip */
};

/* A message handler.  key/value are not NUL-terminated and valid only during the call. */
typedef enum kafka_handled (*kafka_handler_fn)(const char *topic, const char *key, size_t keylen,
                                               const char *value, size_t len, void *arg, char *why,
                                               size_t whylen);

/* Starts a consumer of topics (NULL-terminated array, borrowed) in group.  Unparseable
 * messages go to "<topic>.dlq" through dlq_producer: the consumer waits a few seconds for the
 * copy's acknowledgement, and while the broker has not acknowledged it the message is delivered
 * again later and waits for that same copy (no second copy is produced); its offset is stored
 * once the copy is acknowledged.  thread_exit (may be NULL) runs on the consumer's thread just
 * before it ends, after the last handler call: for what the handler keeps per thread (e.g.
 * db_thread_close).  Returns NULL + err on failure. */
struct kafka_consumer *kafka_consumer_start(const char *brokers, const char *group,
                                            const char *const *topics, kafka_handler_fn fn,
                                            void *arg, void (*thread_exit)(void),
                                            struct kafka_producer *dlq_producer, char *err,
                                            size_t errlen);
/* Stops and closes the consumer (bounded: a broker that is gone does not block the stop). */
void kafka_consumer_stop(struct kafka_consumer *c);
/* Messages handled (applied or sent to the DLQ) since start. */
unsigned long long kafka_consumer_handled(const struct kafka_consumer *c);

/* What a kafka_replay() did. */
struct kafka_replay_stats {
	size_t partitions;          /* of the topic */
	unsigned long long applied; /* messages the handler applied (KAFKA_APPLIED) */
	unsigned long long skipped; /* unusable ones (KAFKA_POISON): left to the consumer group */
};

/* Reads topic from the start of every partition up to the high watermark that partition had when
 * the call began, handing every message to fn(…, arg, …), in order per partition, on the calling
 * thread: for a handler that is idempotent, to apply again what a consumer group has passed by.
 * Only reads: joins no consumer group and commits no offset (librdkafka needs a group.id to assign
 * partitions; group is used for it and as client.id, so pass one the credentials may use, e.g.
 * the service's own consumer group).  Gets the same settings as every consumer (kafka_configure).
 * A message the handler answers KAFKA_RETRY is handed over again after the consumer's pauses;
 * one it answers KAFKA_POISON is skipped (the group's consumer copies it to the DLQ, not this).
 * Ends when every partition is read to its watermark (true), or false + err when *stop (may be
 * NULL) becomes true, timeout_ms passes (the broker's answers included: an unreachable broker is
 * waited for until then), or the topic does not exist.  *stats is filled in either case.
 * Blocks: call it on a thread of its own.  Thread-safe. */
bool kafka_replay(const char *brokers, const char *group, const char *topic, kafka_handler_fn fn,
                  void *arg, const _Atomic bool *stop, long long timeout_ms,
                  struct kafka_replay_stats *stats, char *err, size_t errlen);

#endif
