#include "kafka.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "log.h"
#include "metrics.h"
#include "timefmt.h"

#define PRODUCER_POLL_MS 100        /* the poll thread's wait for delivery reports */
#define QUEUE_FULL_PAUSE_MS 50      /* before producing again into a full local queue */
#define BATCH_STOP_GRACE_MS 1000    /* a stopping batch's last wait before it purges */
#define CONSUMER_POLL_MS 200        /* a consumer's wait for the next message */
#define CONSUMER_RETRY_FIRST_MS 200 /* first pause before a message is delivered again */
#define CONSUMER_RETRY_MAX_MS 5000  /* the pause doubles up to this */
#define CONSUMER_SEEK_MS 2000       /* bound of the rewind to a message not applied */
#define CONSUMER_CLOSE_MS 5000      /* bound of a clean close at stop */
#define DLQ_WAIT_MS 5000            /* one wait for a dead letter's delivery report */
#define DLQ_IN_FLIGHT_MAX 16        /* dead letters remembered per consumer */
#define REPLAY_QUERY_MS 1000        /* one metadata or watermark request of a replay */
#define REPLAY_PAUSE_MS 200         /* before such a request is sent again */

/* ---- producer ---- */

struct kafka_producer {
	rd_kafka_t *rk;
	pthread_t poller;
	_Atomic bool stop;
};

/* The delivery state of messages produced together; each message's opaque points to its slot. */
struct kafka_slot {
	struct kafka_batch *batch;
	int err; /* rd_kafka_resp_err_t of the delivery report */
	bool done;
	struct kafka_sync *sync; /* set for kafka_produce_sync: released by the report */
};

struct kafka_batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending;
};

/* One synchronous send, on the heap and shared by the waiter and the delivery report: whoever
 * lets go last frees it, so a waiter that gives up never leaves the report a dangling slot (and
 * never has to purge the shared producer's queue, which would disturb the outbox). */
struct kafka_sync {
	struct kafka_batch batch;
	struct kafka_slot slot;
	int refs;
};

static void kafka_sync_release(struct kafka_sync *s)
{
	pthread_mutex_lock(&s->batch.mu);
	int left = --s->refs;
	pthread_mutex_unlock(&s->batch.mu);
	if (left == 0) {
		pthread_mutex_destroy(&s->batch.mu);
		pthread_cond_destroy(&s->batch.cv);
		free(s);
	}
}

static void kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	struct kafka_slot *slot = m->_private;
	if (!slot)
		return;
	/* Once pending drops, a batch's waiter may free the slot: read what is needed first. */
	struct kafka_batch *b = slot->batch;
	struct kafka_sync *sync = slot->sync;
	pthread_mutex_lock(&b->mu);
	slot->err = m->err;
	slot->done = true;
	b->pending--;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (sync)
		kafka_sync_release(sync);
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	/* Broker outages are expected and retried; keep them at warn. */
	log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 3)
		log_error("kafka %s: %s", fac, buf);
	else if (level <= 4)
		log_warn("kafka %s: %s", fac, buf);
	else
		log_debug("kafka %s: %s", fac, buf);
}

static void *kafka_poll_main(void *arg)
{
	struct kafka_producer *p = arg;
	while (!p->stop)
		rd_kafka_poll(p->rk, PRODUCER_POLL_MS);
	return NULL;
}

static const struct kafka_property *kafka_props; /* kafka_configure(); borrowed */
static size_t kafka_nprops;

void kafka_configure(const struct kafka_property *props, size_t n)
{
	char line[512] = "";
	size_t len = 0;
	kafka_props = props;
	kafka_nprops = n;
	for (size_t i = 0; i < n && len < sizeof line; i++) {
		if (!props[i].value || !props[i].value[0])
			continue;
		int w = snprintf(line + len, sizeof line - len, "%s%s=%s", len ? " " : "",
		                 props[i].name, props[i].secret ? "(secret)" : props[i].value);
		len += w > 0 ? (size_t)w : 0;
	}
	if (len)
		log_info("kafka client settings: %s", line);
}

/* Sets one property; false + err on failure.  librdkafka's reason may quote the value: it is
 * left out for a secret. */
static bool kafka_set_property(rd_kafka_conf_t *conf, const char *name, const char *value,
                               bool secret, char *err, size_t errlen)
{
	char why[256];
	if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
		if (secret)
			snprintf(err, errlen, "kafka setting %s refused", name);
		else
			snprintf(err, errlen, "kafka setting %s: %s", name, why);
		return false;
	}
	return true;
}

static bool kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t errlen)
{
	return kafka_set_property(conf, name, value, false, err, errlen);
}

static rd_kafka_conf_t *kafka_base_conf(const char *brokers, const char *client_id, char *err,
                                        size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!kafka_set(conf, "bootstrap.servers", brokers, err, errlen) ||
	    !kafka_set(conf, "client.id", client_id, err, errlen) ||
	    !kafka_set(conf, "socket.keepalive.enable", "true", err, errlen) ||
	    !kafka_set(conf, "reconnect.backoff.max.ms", "2000", err, errlen) ||
	    !kafka_set(conf, "topic.metadata.refresh.interval.ms", "10000", err, errlen)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	for (size_t i = 0; i < kafka_nprops; i++) {
		const struct kafka_property *kp = &kafka_props[i];
		if (kp->value && kp->value[0] &&
		    !kafka_set_property(conf, kp->name, kp->value, kp->secret, err, errlen)) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	return conf;
}

struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, char *err,
                                          size_t errlen)
{
	char why[512];
	struct kafka_producer *p = calloc(1, sizeof *p);
	rd_kafka_conf_t *conf = p ? kafka_base_conf(brokers, client_id, err, errlen) : NULL;
	if (!conf)
		goto fail;
	/* Idempotence keeps order and drops duplicates of retries; message.timeout.ms = 0 means a
	 * message waits for the broker as long as it takes (the outbox holds it durably anyway). */
	if (!kafka_set(conf, "enable.idempotence", "true", err, errlen) ||
	    !kafka_set(conf, "message.timeout.ms", "0", err, errlen) ||
	    !kafka_set(conf, "linger.ms", "5", err, errlen)) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
	if (!p->rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "kafka producer: %s", why);
		goto fail;
	}
	if (pthread_create(&p->poller, NULL, kafka_poll_main, p) != 0) {
		rd_kafka_destroy(p->rk);
		snprintf(err, errlen, "kafka producer: cannot start poll thread");
		goto fail;
	}
	return p;
fail:
	free(p);
	return NULL;
}

void kafka_producer_free(struct kafka_producer *p, int timeout_ms)
{
	if (!p)
		return;
	rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("kafka: %d message(s) not delivered at shutdown (they stay in the outbox)",
		         rd_kafka_outq_len(p->rk));
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	p->stop = true;
	pthread_join(p->poller, NULL);
	rd_kafka_poll(p->rk, 0);
	rd_kafka_destroy(p->rk);
	free(p);
}

bool kafka_producer_ping(struct kafka_producer *p, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
	if (md)
		rd_kafka_metadata_destroy(md);
	return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static bool kafka_setting(rd_kafka_t *rk, const char *name, char *out, size_t outlen)
{
	size_t size = outlen;
	return outlen > 0 &&
	       rd_kafka_conf_get(rd_kafka_conf(rk), name, out, &size) == RD_KAFKA_CONF_OK;
}

bool kafka_producer_setting(struct kafka_producer *p, const char *name, char *out, size_t outlen)
{
	return kafka_setting(p->rk, name, out, outlen);
}

/* Waits until every message of b is reported, or the deadline (ms, monotonic; 0 = none)
 * passes, or *stop becomes true.  Returns true when all were reported. */
static bool kafka_batch_wait(struct kafka_batch *b, long long deadline_ms, const _Atomic bool *stop)
{
	pthread_mutex_lock(&b->mu);
	while (b->pending > 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now); /* pthread_cond_timedwait's clock */
		now.tv_nsec += 200 * 1000000L;
		if (now.tv_nsec >= 1000000000L) {
			now.tv_sec++;
			now.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->cv, &b->mu, &now);
		if ((deadline_ms && timefmt_mono_ms() > deadline_ms) || (stop && *stop))
			break;
	}
	bool all = b->pending == 0;
	pthread_mutex_unlock(&b->mu);
	return all;
}

static rd_kafka_resp_err_t kafka_produce_one(struct kafka_producer *p, const char *topic,
                                             const char *key, size_t keylen, const void *value,
                                             size_t len, struct kafka_slot *slot)
{
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
			p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
			RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(slot),
			RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return e;
		timefmt_sleep_ms(QUEUE_FULL_PAUSE_MS); /* the poll thread drains the queue */
	}
}

/* Produces one message whose delivery report goes to a new kafka_sync (two references: the
 * caller's, released with kafka_sync_release(), and the report's).  NULL when librdkafka refused
 * the message (logged) or memory ran out. */
static struct kafka_sync *kafka_sync_start(struct kafka_producer *p, const char *topic,
                                           const char *key, size_t keylen, const void *value,
                                           size_t len)
{
	struct kafka_sync *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_init(&s->batch.mu, NULL);
	pthread_cond_init(&s->batch.cv, NULL);
	s->batch.pending = 1;
	s->slot = (struct kafka_slot){&s->batch, 0, false, s};
	s->refs = 2;
	rd_kafka_resp_err_t e = kafka_produce_one(p, topic, key, keylen, value, len, &s->slot);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_error("kafka: produce to %s failed: %s", topic, rd_kafka_err2str(e));
		s->refs = 1; /* no report will come */
		kafka_sync_release(s);
		return NULL;
	}
	return s;
}

/* Waits up to timeout_ms (or until *stop, which may be NULL) for s's delivery report.  True when
 * it came; *err then receives its error (RD_KAFKA_RESP_ERR_NO_ERROR = acknowledged).  A wait
 * that ended early can be repeated: the message stays queued in librdkafka meanwhile. */
static bool kafka_sync_wait(struct kafka_sync *s, int timeout_ms, const _Atomic bool *stop,
                            int *err)
{
	bool done = kafka_batch_wait(&s->batch, timefmt_mono_ms() + timeout_ms, stop);
	pthread_mutex_lock(&s->batch.mu);
	*err = s->slot.err;
	pthread_mutex_unlock(&s->batch.mu);
	return done;
}

bool kafka_produce_sync(struct kafka_producer *p, const char *topic, const char *key, size_t keylen,
                        const void *value, size_t len, int timeout_ms)
{
	int err = 0;
	struct kafka_sync *s = kafka_sync_start(p, topic, key, keylen, value, len);
	if (!s)
		return false;
	bool delivered = kafka_sync_wait(s, timeout_ms, NULL, &err) &&
	                 err == RD_KAFKA_RESP_ERR_NO_ERROR;
	kafka_sync_release(s);
	return delivered;
}

size_t kafka_produce_batch(struct kafka_producer *p, struct kafka_message *msgs, size_t n,
                           const _Atomic bool *stop)
{
	struct kafka_batch b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
	struct kafka_slot *slots = calloc(n ? n : 1, sizeof *slots);
	size_t produced = 0;
	for (size_t i = 0; i < n; i++) {
		msgs[i].delivered = false;
		msgs[i].error = NULL;
	}
	if (!slots)
		return 0;
	for (size_t i = 0; i < n; i++) {
		slots[i] = (struct kafka_slot){&b, 0, false, NULL};
		pthread_mutex_lock(&b.mu);
		b.pending++;
		pthread_mutex_unlock(&b.mu);
		rd_kafka_resp_err_t e = kafka_produce_one(p, msgs[i].topic, msgs[i].key,
		                                          msgs[i].keylen, msgs[i].value,
		                                          msgs[i].len, &slots[i]);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			pthread_mutex_lock(&b.mu);
			b.pending--;
			pthread_mutex_unlock(&b.mu);
			log_error("kafka: produce to %s failed: %s", msgs[i].topic,
			          rd_kafka_err2str(e));
			break; /* keep the order: the rest waits for the next batch */
		}
		produced++;
	}
	/* Wait as long as the broker needs; on stop, give it a moment, then purge so that every
	 * report arrives before the slots go away. */
	if (!kafka_batch_wait(&b, 0, stop)) {
		if (!kafka_batch_wait(&b, timefmt_mono_ms() + BATCH_STOP_GRACE_MS, NULL)) {
			rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
			kafka_batch_wait(&b, 0, NULL);
		}
	}
	for (size_t i = 0; i < produced; i++) {
		msgs[i].delivered = slots[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
		if (!msgs[i].delivered)
			msgs[i].error = rd_kafka_err2str((rd_kafka_resp_err_t)slots[i].err);
	}
	free(slots);
	return produced;
}

/* ---- consumer ---- */

/* A copy of an unusable message on <topic>.dlq, remembered from its produce until its delivery
 * report came and the message's offset was stored.  The message is delivered again while the copy
 * waits (a broker outage, a slow broker): it then waits for this same copy instead of producing
 * another, so one unusable message gives one dead letter.  Used by the consumer thread only. */
struct kafka_dead_letter {
	char *topic; /* of the unusable message (heap); NULL = free slot */
	int32_t partition;
	int64_t offset;
	struct kafka_sync *sync; /* the copy's produce, shared with its delivery report */
};

enum kafka_dead_letter_state {
	KAFKA_DLQ_DELIVERED, /* the broker acknowledged the copy: store the offset */
	KAFKA_DLQ_WAITING,   /* the copy is still queued in librdkafka: deliver the message again */
	KAFKA_DLQ_FAILED,    /* the copy was refused: the next delivery produces a new one */
};

struct kafka_consumer {
	rd_kafka_t *rk;
	struct kafka_producer *dlq;
	struct kafka_dead_letter dead[DLQ_IN_FLIGHT_MAX];
	kafka_handler_fn fn;
	void *arg;
	void (*thread_exit)(void); /* may be NULL */
	pthread_t thread;
	_Atomic bool stop;
	_Atomic unsigned long long handled;
};

static void consumer_store(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
		m->offset + 1;
	rd_kafka_resp_err_t e = rd_kafka_offsets_store(rk, l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("kafka: storing offset failed: %s", rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
}

static void consumer_rewind(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
		m->offset;
	rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, l, CONSUMER_SEEK_MS);
	if (e) {
		log_warn("kafka: seek failed: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
	rd_kafka_topic_partition_list_destroy(l);
}

static struct kafka_dead_letter *dead_letter_find(struct kafka_consumer *c,
                                                  const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	for (size_t i = 0; i < DLQ_IN_FLIGHT_MAX; i++) {
		struct kafka_dead_letter *d = &c->dead[i];
		if (d->topic && d->partition == m->partition && d->offset == m->offset &&
		    strcmp(d->topic, topic) == 0)
			return d;
	}
	return NULL;
}

static void dead_letter_clear(struct kafka_dead_letter *d)
{
	if (d->sync)
		kafka_sync_release(d->sync);
	free(d->topic);
	*d = (struct kafka_dead_letter){0};
}

/* A slot for a new dead letter: a free one, else one whose copy is no longer in flight (its
 * message was not delivered again, e.g. its partition moved to another consumer).  NULL when
 * every slot's copy is still queued. */
static struct kafka_dead_letter *dead_letter_slot(struct kafka_consumer *c)
{
	struct kafka_dead_letter *done = NULL;
	for (size_t i = 0; i < DLQ_IN_FLIGHT_MAX; i++) {
		struct kafka_dead_letter *d = &c->dead[i];
		if (!d->topic)
			return d;
		pthread_mutex_lock(&d->sync->batch.mu);
		if (!done && d->sync->slot.done)
			done = d;
		pthread_mutex_unlock(&d->sync->batch.mu);
	}
	if (done)
		dead_letter_clear(done);
	return done;
}

/* Copies the unusable message m to dlq (once: a message delivered again waits for the copy made
 * the first time), waiting for the copy's delivery report at most DLQ_WAIT_MS. */
static enum kafka_dead_letter_state consumer_dead_letter(struct kafka_consumer *c,
                                                         const rd_kafka_message_t *m,
                                                         const char *dlq, const char *why)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	struct kafka_dead_letter *d = dead_letter_find(c, m);
	if (!d) {
		d = dead_letter_slot(c);
		if (!d)
			return KAFKA_DLQ_WAITING; /* produced nothing: this message waits its turn */
		char *name = strdup(topic);
		struct kafka_sync *sync = name ? kafka_sync_start(c->dlq, dlq, m->key, m->key_len,
		                                                  m->payload, m->len)
		                               : NULL;
		if (!sync) {
			free(name);
			return KAFKA_DLQ_FAILED;
		}
		*d = (struct kafka_dead_letter){name, m->partition, m->offset, sync};
		log_warn("kafka: message %s[%d]@%lld unusable (%s): copying it to %s", topic,
		         (int)m->partition, (long long)m->offset, why, dlq);
	}
	int err = 0;
	if (!kafka_sync_wait(d->sync, DLQ_WAIT_MS, &c->stop, &err))
		return KAFKA_DLQ_WAITING;
	dead_letter_clear(d);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warn("kafka: copy of %s[%d]@%lld to %s failed: %s", topic, (int)m->partition,
		         (long long)m->offset, dlq, rd_kafka_err2str((rd_kafka_resp_err_t)err));
		return KAFKA_DLQ_FAILED;
	}
	return KAFKA_DLQ_DELIVERED;
}

/* The pause before a message that was not applied (why) is handed over again: *backoff (0 after
 * a message applied) doubles from CONSUMER_RETRY_FIRST_MS up to CONSUMER_RETRY_MAX_MS.  Logged. */
static void consumer_retry_pause(const rd_kafka_message_t *m, const char *why, long *backoff)
{
	*backoff = *backoff ? *backoff * 2 : CONSUMER_RETRY_FIRST_MS;
	if (*backoff > CONSUMER_RETRY_MAX_MS)
		*backoff = CONSUMER_RETRY_MAX_MS;
	log_warn("kafka: message %s[%d]@%lld not applied (%s); retrying in %ld ms",
	         rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, why,
	         *backoff);
}

#define KAFKA_DLQ_METRIC "kafka_dlq_messages_total"
#define KAFKA_DLQ_HELP "Messages sent to a DLQ."
#define KAFKA_CONSUMED_METRIC "kafka_messages_consumed_total"
#define KAFKA_CONSUMED_HELP "Messages handled."

static void consumer_handle(struct kafka_consumer *c, rd_kafka_message_t *m, long *backoff)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	char why[256] = "";
	char dlq[300];
	snprintf(dlq, sizeof dlq, "%s.dlq", topic);
	/* A message whose copy is already on its way is not handled again. */
	enum kafka_handled h = dead_letter_find(c, m) ? KAFKA_POISON
	                                              : c->fn(topic, m->key, m->key_len, m->payload,
	                                                      m->len, c->arg, why, sizeof why);
	if (h == KAFKA_POISON) {
		switch (consumer_dead_letter(c, m, dlq, why)) {
		case KAFKA_DLQ_DELIVERED:
			metrics_counter_add(KAFKA_DLQ_METRIC, KAFKA_DLQ_HELP, 1);
			h = KAFKA_APPLIED;
			break;
		case KAFKA_DLQ_WAITING:
			snprintf(why, sizeof why, "its copy to the DLQ is not acknowledged yet");
			h = KAFKA_RETRY;
			break;
		case KAFKA_DLQ_FAILED:
			snprintf(why, sizeof why, "copying it to the DLQ failed");
			h = KAFKA_RETRY;
			break;
		}
	}
	if (h == KAFKA_APPLIED) {
		consumer_store(c->rk, m);
		c->handled++;
		metrics_counter_add(KAFKA_CONSUMED_METRIC, KAFKA_CONSUMED_HELP, 1);
		*backoff = 0;
		return;
	}
	/* Not applied: deliver the same message again after a pause. */
	consumer_retry_pause(m, why, backoff);
	consumer_rewind(c->rk, m);
	timefmt_sleep_unless(*backoff, &c->stop);
}

static void *consumer_main(void *arg)
{
	struct kafka_consumer *c = arg;
	long backoff = 0;
	while (!c->stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, CONSUMER_POLL_MS);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
			consumer_handle(c, m, &backoff);
		else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
	}
	/* Copies still queued stay with the producer (kafka_sync: the report frees them). */
	for (size_t i = 0; i < DLQ_IN_FLIGHT_MAX; i++)
		dead_letter_clear(&c->dead[i]);
	if (c->thread_exit)
		c->thread_exit();
	return NULL;
}

/* The settings of every consumer, the group's and the replay's (kafka_replay): the base ones,
 * group as group.id and client.id, offsets stored only by the code, from the start of a
 * partition that has none, and no topic created by reading it.  NULL + err on failure. */
static rd_kafka_conf_t *kafka_consumer_conf(const char *brokers, const char *group, char *err,
                                            size_t errlen)
{
	rd_kafka_conf_t *conf = kafka_base_conf(brokers, group, err, errlen);
	if (conf && (!kafka_set(conf, "group.id", group, err, errlen) ||
	             !kafka_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
	             !kafka_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
	             !kafka_set(conf, "allow.auto.create.topics", "false", err, errlen))) {
		rd_kafka_conf_destroy(conf);
		conf = NULL;
	}
	return conf;
}

struct kafka_consumer *kafka_consumer_start(const char *brokers, const char *group,
                                            const char *const *topics, kafka_handler_fn fn,
                                            void *arg, void (*thread_exit)(void),
                                            struct kafka_producer *dlq_producer, char *err,
                                            size_t errlen)
{
	char why[512];
	rd_kafka_topic_partition_list_t *subs = NULL;
	struct kafka_consumer *c = calloc(1, sizeof *c);
	rd_kafka_conf_t *conf = c ? kafka_consumer_conf(brokers, group, err, errlen) : NULL;
	if (!conf)
		goto fail;
	if (!kafka_set(conf, "enable.auto.commit", "true", err, errlen) ||
	    !kafka_set(conf, "auto.commit.interval.ms", "500", err, errlen) ||
	    /* Also bounds kafka_consumer_stop() when the broker is gone: librdkafka 2.0 defers
	     * offset commits while the coordinator is unreachable, expires them only after
	     * session.timeout.ms, and rd_kafka_destroy waits for them even with
	     * NO_CONSUMER_CLOSE.  6000 is the broker's default group.min.session.timeout.ms. */
	    !kafka_set(conf, "session.timeout.ms", "6000", err, errlen) ||
	    !kafka_set(conf, "heartbeat.interval.ms", "2000", err, errlen)) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
	if (!c->rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "kafka consumer: %s", why);
		goto fail;
	}
	rd_kafka_poll_set_consumer(c->rk);
	subs = rd_kafka_topic_partition_list_new(4);
	for (size_t i = 0; topics[i]; i++)
		rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
		rd_kafka_destroy(c->rk);
		goto fail;
	}
	c->dlq = dlq_producer;
	c->fn = fn;
	c->arg = arg;
	c->thread_exit = thread_exit;
	/* Exported at 0 from the start: an alert on increase() sees the first message counted,
	 * which a series that appears with the value 1 would not show (helm chart,
	 * MeetingRoomsDLQMessages). */
	metrics_counter_add(KAFKA_DLQ_METRIC, KAFKA_DLQ_HELP, 0);
	metrics_counter_add(KAFKA_CONSUMED_METRIC, KAFKA_CONSUMED_HELP, 0);
	if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
		snprintf(err, errlen, "kafka consumer: cannot start thread");
		rd_kafka_destroy(c->rk);
		goto fail;
	}
	return c;
fail:
	free(c);
	return NULL;
}

void kafka_consumer_stop(struct kafka_consumer *c)
{
	if (!c)
		return;
	c->stop = true;
	pthread_join(c->thread, NULL);
	/* A clean close commits the stored offsets and leaves the group; it can hang while the
	 * broker is gone (librdkafka#4519), so it is bounded.  The destroy that follows can still
	 * wait for deferred commits to expire: up to session.timeout.ms (see the start). */
	rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
	rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
	bool closed = false;
	if (!e) {
		long long deadline = timefmt_mono_ms() + CONSUMER_CLOSE_MS;
		while (!(closed = rd_kafka_consumer_closed(c->rk)) &&
		       timefmt_mono_ms() < deadline) {
			rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
			if (ev)
				rd_kafka_event_destroy(ev);
		}
	} else {
		rd_kafka_error_destroy(e);
	}
	rd_kafka_queue_destroy(q);
	if (!closed)
		log_warn(
			"kafka: consumer close timed out; leaving the group without a clean close");
	rd_kafka_destroy_flags(c->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	free(c);
}

bool kafka_consumer_setting(struct kafka_consumer *c, const char *name, char *out, size_t outlen)
{
	return kafka_setting(c->rk, name, out, outlen);
}

unsigned long long kafka_consumer_handled(const struct kafka_consumer *c)
{
	return c ? c->handled : 0;
}

/* ---- replay ---- */

/* One kafka_replay(): its consumer and, per partition, the offset where the partition ended when
 * the replay began.  Used by the calling thread only. */
struct kafka_replay {
	rd_kafka_t *rk;
	const char *topic;
	int64_t *end; /* [partition]: the high watermark at the start; -1 once read to it */
	size_t npart;
	size_t left; /* partitions not yet read to their end */
	const _Atomic bool *stop;
	long long deadline; /* monotonic ms */
};

static bool replay_over(const struct kafka_replay *r)
{
	return *r->stop || timefmt_mono_ms() >= r->deadline;
}

/* Why the replay ended early: stopped, or the deadline passed while what (e.g. "reading") failed
 * or went on. */
static void replay_error(const struct kafka_replay *r, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s%s %s", *r->stop ? "stopped while " : "timed out ", what,
	         r->topic);
}

/* The topic's partitions: r->npart and their ends.  An unreachable broker is asked again until
 * the replay is over.  false + err when it is over first or the topic does not exist. */
static bool replay_ends(struct kafka_replay *r, char *err, size_t errlen)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, r->topic, NULL);
	bool ok = false;
	rd_kafka_resp_err_t e = rkt ? RD_KAFKA_RESP_ERR__TRANSPORT : rd_kafka_last_error();
	while (rkt) {
		e = rd_kafka_metadata(r->rk, 0, rkt, &md, REPLAY_QUERY_MS);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			e = md->topic_cnt == 1 ? md->topics[0].err
			                       : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
		    e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || replay_over(r))
			break;
		if (md)
			rd_kafka_metadata_destroy(md);
		md = NULL;
		timefmt_sleep_unless(REPLAY_PAUSE_MS, r->stop);
	}
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || !rkt)
			snprintf(err, errlen, "topic %s: %s", r->topic, rd_kafka_err2str(e));
		else
			replay_error(r, "asking for the partitions of", err, errlen);
		goto out;
	}
	/* Kafka numbers a topic's partitions 0 … count - 1. */
	r->npart = (size_t)md->topics[0].partition_cnt;
	r->end = calloc(r->npart ? r->npart : 1, sizeof *r->end);
	if (!r->end) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t p = 0; p < r->npart; p++) {
		int64_t low = 0, high = 0;
		while (rd_kafka_query_watermark_offsets(r->rk, r->topic, (int32_t)p, &low, &high,
		                                        REPLAY_QUERY_MS) !=
		       RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (replay_over(r)) {
				replay_error(r, "asking where the partitions end of", err, errlen);
				goto out;
			}
			timefmt_sleep_unless(REPLAY_PAUSE_MS, r->stop);
		}
		r->end[p] = high > low ? high : -1;
		r->left += high > low;
	}
	ok = true;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	return ok;
}

/* Reads every partition that holds messages from its start.  false + err on failure. */
static bool replay_assign(struct kafka_replay *r, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(
		r->npart ? (int)r->npart : 1);
	for (size_t p = 0; p < r->npart; p++)
		if (r->end[p] >= 0)
			rd_kafka_topic_partition_list_add(l, r->topic, (int32_t)p)->offset =
				RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		snprintf(err, errlen, "assigning the partitions of %s: %s", r->topic,
		         rd_kafka_err2str(e));
	return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Partition p is read to its end: it is fetched no more. */
static void replay_reached(struct kafka_replay *r, int32_t p)
{
	r->end[p] = -1;
	r->left--;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, r->topic, p);
	rd_kafka_pause_partitions(r->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
}

/* Hands m to fn until it is applied or skipped (true), or the replay is over (false). */
static bool replay_handle(const struct kafka_replay *r, const rd_kafka_message_t *m,
                          kafka_handler_fn fn, void *arg, struct kafka_replay_stats *stats)
{
	long backoff = 0;
	while (!replay_over(r)) {
		char why[256] = "";
		switch (fn(r->topic, m->key, m->key_len, m->payload, m->len, arg, why,
		           sizeof why)) {
		case KAFKA_APPLIED:
			stats->applied++;
			return true;
		case KAFKA_POISON:
			log_debug("kafka replay: message %s[%d]@%lld skipped (%s)", r->topic,
			          (int)m->partition, (long long)m->offset, why);
			stats->skipped++;
			return true;
		case KAFKA_RETRY:
			consumer_retry_pause(m, why, &backoff);
			timefmt_sleep_unless(backoff, r->stop);
			break;
		}
	}
	return false;
}

/* A message or a partition's end (PARTITION_EOF, whose offset is the end). */
static void replay_message(struct kafka_replay *r, const rd_kafka_message_t *m, kafka_handler_fn fn,
                           void *arg, struct kafka_replay_stats *stats)
{
	bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
	int32_t p = m->partition;
	if (p < 0 || (size_t)p >= r->npart || r->end[p] < 0)
		return; /* read to its end already */
	if (!eof && m->offset < r->end[p] && !replay_handle(r, m, fn, arg, stats))
		return;
	/* The last message before the end, or a later one (the last were compacted), or the end. */
	if ((eof ? m->offset : m->offset + 1) >= r->end[p])
		replay_reached(r, p);
}

bool kafka_replay(const char *brokers, const char *group, const char *topic, kafka_handler_fn fn,
                  void *arg, const _Atomic bool *stop, long long timeout_ms,
                  struct kafka_replay_stats *stats, char *err, size_t errlen)
{
	static const _Atomic bool never = false;
	char why[512];
	struct kafka_replay r = {.topic = topic,
	                         .stop = stop ? stop : &never,
	                         .deadline = timefmt_mono_ms() + timeout_ms};
	bool done = false;
	*stats = (struct kafka_replay_stats){0};
	/* Offsets are never stored, and would not be committed: nothing of the group changes. */
	rd_kafka_conf_t *conf = kafka_consumer_conf(brokers, group, err, errlen);
	if (!conf)
		goto out;
	if (!kafka_set(conf, "enable.auto.commit", "false", err, errlen) ||
	    !kafka_set(conf, "enable.partition.eof", "true", err, errlen)) {
		rd_kafka_conf_destroy(conf);
		goto out;
	}
	r.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
	if (!r.rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "kafka replay: %s", why);
		goto out;
	}
	rd_kafka_poll_set_consumer(r.rk);
	if (!replay_ends(&r, err, errlen))
		goto out;
	stats->partitions = r.npart;
	if (r.left > 0 && !replay_assign(&r, err, errlen))
		goto out;
	while (r.left > 0 && !replay_over(&r)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r.rk, CONSUMER_POLL_MS);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR ||
		    m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			replay_message(&r, m, fn, arg, stats);
		else
			log_warn("kafka replay: %s", rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
	}
	done = r.left == 0;
	if (!done)
		replay_error(&r, "reading", err, errlen);
out:
	/* No group to leave and nothing to commit: no consumer close, which can hang while the
	 * broker is gone (librdkafka#4519). */
	if (r.rk)
		rd_kafka_destroy_flags(r.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	free(r.end);
	return done;
}
