/* kafka: the suite's use of librdkafka.
 *
 * - One idempotent producer per process, with its own poll thread (delivery reports only fire
 *   inside rd_kafka_poll).  Messages are retried by librdkafka until the broker takes them, in
 *   order per partition: a broker outage of any length only delays them.
 * - The outbox publisher: a thread that reads unsent rows of the service's `outbox` table in id
 *   order, produces them with key = the row's key, and marks them sent once the broker
 *   acknowledged them.  The change and its outbox row commit together (the service's repo), so
 *   an event can be delayed but never lost; after a crash, unacknowledged rows are sent again
 *   (consumers are idempotent).  Only one replica publishes at a time (a PostgreSQL advisory
 *   lock), which keeps the order.
 * - The consumer helper: a thread that hands each message to a handler and stores its offset
 *   only after the handler reports that its database transaction committed; messages the
 *   handler cannot parse are copied to "<topic>.dlq" and skipped; transient failures are retried.
 *
 * All functions are thread-safe unless noted. */
#ifndef KAFKA_H
#define KAFKA_H

#include <stdbool.h>
#include <stddef.h>

struct kafka_producer;
struct kafka_outbox;
struct kafka_consumer;

/* Creates the producer and starts its poll thread.  brokers: "host:port,…".  NULL + err on
 * failure (bad configuration). */
struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, char *err,
                                          size_t errlen);
/* Waits up to timeout_ms for queued messages, then stops the poll thread and frees. */
void kafka_producer_free(struct kafka_producer *p, int timeout_ms);
/* Asks the broker for metadata (bounded by timeout_ms): true when it answered. */
bool kafka_producer_ping(struct kafka_producer *p, int timeout_ms);
/* Produces one message and waits for its delivery report (bounded by timeout_ms).  Returns true
 * when the broker acknowledged it; after a timeout the message may still be delivered later.
 * For the DLQ; the outbox publisher batches instead. */
bool kafka_produce_sync(struct kafka_producer *p, const char *topic, const char *key,
                        size_t keylen, const void *value, size_t len, int timeout_ms);

/* Starts the outbox publisher on its own thread with its own database connection.  lock_key
 * identifies the outbox among replicas (any constant of the service). */
struct kafka_outbox *kafka_outbox_start(struct kafka_producer *p, long long lock_key);
/* Stops the publisher (waits for its thread; bounded by the producer's flush). */
void kafka_outbox_stop(struct kafka_outbox *o);
/* Unsent outbox rows, counted on the calling thread's database connection; -1 on error.  As a
 * double for metrics_register_gauge(). */
double kafka_outbox_backlog(void);
/* Rows published by this process since start (for tests and metrics). */
unsigned long long kafka_outbox_published(const struct kafka_outbox *o);

enum kafka_handled {
	KAFKA_APPLIED, /* committed (or nothing to do): store the offset */
	KAFKA_RETRY,   /* transient failure (database down): deliver the same message again */
	KAFKA_POISON,  /* cannot be parsed or applied ever: copy to <topic>.dlq, then skip */
};

/* A message handler.  key/value are not NUL-terminated and valid only during the call. */
typedef enum kafka_handled (*kafka_handler_fn)(const char *topic, const char *key, size_t keylen,
                                               const char *value, size_t len, void *arg,
                                               char *why, size_t whylen);

/* Starts a consumer of topics (NULL-terminated array, borrowed) in group.  Unparseable
 * messages go to "<topic>.dlq" through dlq_producer.  Returns NULL + err on failure. */
struct kafka_consumer *kafka_consumer_start(const char *brokers, const char *group,
                                            const char *const *topics, kafka_handler_fn fn,
                                            void *arg, struct kafka_producer *dlq_producer,
                                            char *err, size_t errlen);
/* Stops and closes the consumer (bounded: a broker that is gone does not block the stop). */
void kafka_consumer_stop(struct kafka_consumer *c);
/* Messages handled (applied or sent to the DLQ) since start. */
unsigned long long kafka_consumer_handled(const struct kafka_consumer *c);

#endif
