/* Unit tests of common/src/kafka.c against librdkafka's in-process mock cluster: synchronous
 * and batch produce (the outbox publisher's, in order, bounded by its stop flag), the consumer
 * helper's contract (order, dead-letter copies, one copy however long the DLQ stalls, retries,
 * offsets stored only after a message was applied), the replay (every partition from its start
 * to its end, retries, poison skipped, nothing committed, bounded), the producer ping, the
 * security settings every client gets, and a bounded consumer stop when the broker is gone.
 *
 * The mock's group coordinator delays every new group's first join by 3 s and a rejoin after a
 * member left by session.timeout.ms - 1 s, so the consumers of all tests are started together in
 * the group setup and join in parallel; each test still has its own topics and consumer group,
 * and the stop test has a cluster of its own that it destroys.  Consumers and their recorders
 * live in the suite state, so a failed assertion leaves no handler writing to freed memory.
 * Every wait polls a condition and is bounded (WAIT_MS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka.h"
#include "log.h"
#include "metrics.h"

#define WAIT_MS 15000
#define SEND_MS 5000
#define REC_MAX 16
#define REC_FIELD 32

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- a recording handler ---- */

struct rec_msg {
	char topic[REC_FIELD];
	char key[REC_FIELD];
	size_t keylen;
	char value[REC_FIELD];
	size_t len;
};

/* What a consumer's handler saw, in order, and how it answers.  Written on the consumer's
 * thread, read on the test's: everything below mu is guarded by it. */
struct recorder {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled on every recorded message; CLOCK_MONOTONIC */
	struct rec_msg msgs[REC_MAX];
	size_t n;
	bool overflow; /* more than REC_MAX messages, or a field longer than REC_FIELD */
	/* Behaviour (set before the consumer starts; NULL = not used): */
	const char *poison_value;       /* answer KAFKA_POISON */
	const char *retry_once_value;   /* answer KAFKA_RETRY the first time only */
	const char *retry_always_value; /* answer KAFKA_RETRY every time */
};

static void rec_init(struct recorder *r)
{
	memset(r, 0, sizeof *r);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&r->mu, NULL);
}

static void rec_destroy(struct recorder *r)
{
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
}

static bool rec_copy(char *dst, const char *src, size_t len)
{
	if (len >= REC_FIELD)
		return false;
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

static bool field_is(const char *data, size_t len, const char *s)
{
	return s && len == strlen(s) && memcmp(data, s, len) == 0;
}

static enum kafka_handled rec_handler(const char *topic, const char *key, size_t keylen,
                                      const char *value, size_t len, void *arg, char *why,
                                      size_t whylen)
{
	struct recorder *r = arg;
	enum kafka_handled h = KAFKA_APPLIED;
	pthread_mutex_lock(&r->mu);
	size_t seen_before = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->msgs[i].len == len && memcmp(r->msgs[i].value, value, len) == 0)
			seen_before++;
	if (r->n < REC_MAX) {
		struct rec_msg *m = &r->msgs[r->n];
		if (!rec_copy(m->topic, topic, strlen(topic)) || !rec_copy(m->key, key, keylen) ||
		    !rec_copy(m->value, value, len))
			r->overflow = true;
		m->keylen = keylen;
		m->len = len;
		r->n++;
	} else {
		r->overflow = true;
	}
	if (field_is(value, len, r->poison_value)) {
		snprintf(why, whylen, "test: poison");
		h = KAFKA_POISON;
	} else if (field_is(value, len, r->retry_always_value) ||
	           (seen_before == 0 && field_is(value, len, r->retry_once_value))) {
		snprintf(why, whylen, "test: retry");
		h = KAFKA_RETRY;
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return h;
}

/* Waits until at least n messages were recorded (bounded by WAIT_MS); returns the count. */
static size_t rec_wait(struct recorder *r, size_t n)
{
	long long deadline = mono_ms() + WAIT_MS;
	pthread_mutex_lock(&r->mu);
	while (r->n < n && mono_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	size_t got = r->n;
	pthread_mutex_unlock(&r->mu);
	return got;
}

/* Asserts message i of r (the caller holds no lock; the consumer must be stopped or past i). */
static void assert_rec(struct recorder *r, size_t i, const char *topic, const char *key,
                       const char *value)
{
	pthread_mutex_lock(&r->mu);
	struct rec_msg m = r->msgs[i];
	size_t n = r->n;
	bool overflow = r->overflow;
	pthread_mutex_unlock(&r->mu);
	assert_false(overflow);
	assert_true(i < n);
	assert_string_equal(m.topic, topic);
	assert_int_equal(m.keylen, strlen(key));
	assert_string_equal(m.key, key);
	assert_int_equal(m.len, strlen(value));
	assert_string_equal(m.value, value);
}

static bool wait_handled(const struct kafka_consumer *c, unsigned long long n)
{
	long long deadline = mono_ms() + WAIT_MS;
	while (kafka_consumer_handled(c) < n) {
		if (mono_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

/* ---- suite state: two mock clusters, a producer on each, the tests' consumers ---- */

struct mock {
	rd_kafka_t *rk; /* throwaway handle that owns the cluster */
	rd_kafka_mock_cluster_t *mc;
	char brokers[256];
};

/* The consumers, each in its own group ("g-<name>") except the two of the offsets test. */
enum consumer_id {
	C_ROUNDTRIP, /* "roundtrip" */
	C_POISON,    /* "t", poison → "t.dlq" */
	C_DLQ,       /* "t.dlq" */
	C_RETRY,     /* "retry" */
	C_OFFSETS_A, /* "offsets", started in the setup */
	C_OFFSETS_B, /* "offsets", same group, started by the test */
	C_STOP,      /* "t" on the doomed cluster */
	C_BATCH,     /* "batch" */
	C_STALL,     /* "stall", poison → "stall.dlq" */
	C_STALL_DLQ, /* "stall.dlq" */
	C_REPLAY,    /* no consumer: the replay's handler */
	C_REPLAYED, /* "replay" in group "g-replay", started by the replay test after the replays */
	C_COUNT
};

struct suite {
	struct mock main;   /* shared by every test but the stop test */
	struct mock doomed; /* destroyed by the stop test */
	struct kafka_producer *p;
	struct kafka_consumer *c[C_COUNT];
	struct recorder rec[C_COUNT];
};

static int mock_new(struct mock *m, const char *const *topics)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* The throwaway handle only hosts the cluster: keep its own logging quiet. */
	if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!m->rk) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "mock handle: %s\n", err);
		return -1;
	}
	m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
	if (!m->mc)
		return -1;
	snprintf(m->brokers, sizeof m->brokers, "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
	for (size_t i = 0; topics[i]; i++)
		if (rd_kafka_mock_topic_create(m->mc, topics[i], 1, 1) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR)
			return -1;
	return 0;
}

static void mock_destroy(struct mock *m)
{
	if (m->mc)
		rd_kafka_mock_cluster_destroy(m->mc);
	if (m->rk)
		rd_kafka_destroy(m->rk);
	m->mc = NULL;
	m->rk = NULL;
}

/* The consumers' thread_exit: how often it ran, and whether always on a thread of its own. */
static _Atomic int thread_exits;
static _Atomic bool thread_exit_on_test_thread;
static pthread_t test_thread;

static void count_thread_exit(void)
{
	thread_exits++;
	if (pthread_equal(pthread_self(), test_thread))
		thread_exit_on_test_thread = true;
}

static struct kafka_consumer *consumer_start(struct suite *s, enum consumer_id id,
                                             const struct mock *m, const char *group,
                                             const char *topic)
{
	char err[512] = "";
	const char *topics[] = {topic, NULL};
	s->c[id] = kafka_consumer_start(m->brokers, group, topics, rec_handler, &s->rec[id],
	                                count_thread_exit, s->p, err, sizeof err);
	if (!s->c[id])
		fprintf(stderr, "kafka_consumer_start %s: %s\n", group, err);
	return s->c[id];
}

static void consumer_stop(struct suite *s, enum consumer_id id)
{
	kafka_consumer_stop(s->c[id]);
	s->c[id] = NULL;
}

static int suite_teardown(void **state);

static int suite_setup(void **state)
{
	static const char *const main_topics[] = {
		"roundtrip", "t", "t.dlq", "retry", "offsets", "batch", "stall", "stall.dlq", NULL};
	static const char *const doomed_topics[] = {"t", "t.dlq", NULL};
	char err[512];
	log_init("test", LOG_LEVEL_WARN);
	test_thread = pthread_self();
	struct suite *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	*state = s;
	for (size_t i = 0; i < C_COUNT; i++)
		rec_init(&s->rec[i]);
	s->rec[C_POISON].poison_value = "garbage";
	s->rec[C_STALL].poison_value = "garbage";
	s->rec[C_RETRY].retry_once_value = "b";
	s->rec[C_OFFSETS_A].retry_always_value = "second";
	s->rec[C_REPLAY].poison_value = "garbage";
	s->rec[C_REPLAY].retry_once_value = "again";
	if (mock_new(&s->main, main_topics) != 0 || mock_new(&s->doomed, doomed_topics) != 0)
		goto fail;
	s->p = kafka_producer_new(s->main.brokers, "test-producer", err, sizeof err);
	if (!s->p) {
		fprintf(stderr, "producer: %s\n", err);
		goto fail;
	}
	if (!consumer_start(s, C_ROUNDTRIP, &s->main, "g-roundtrip", "roundtrip") ||
	    !consumer_start(s, C_POISON, &s->main, "g-poison", "t") ||
	    !consumer_start(s, C_DLQ, &s->main, "g-dlq", "t.dlq") ||
	    !consumer_start(s, C_RETRY, &s->main, "g-retry", "retry") ||
	    !consumer_start(s, C_OFFSETS_A, &s->main, "g-offsets", "offsets") ||
	    !consumer_start(s, C_STOP, &s->doomed, "g-stop", "t") ||
	    !consumer_start(s, C_BATCH, &s->main, "g-batch", "batch") ||
	    !consumer_start(s, C_STALL, &s->main, "g-stall", "stall") ||
	    !consumer_start(s, C_STALL_DLQ, &s->main, "g-stall-dlq", "stall.dlq"))
		goto fail;
	return 0;
fail:
	suite_teardown(state);
	*state = NULL;
	return -1;
}

static int suite_teardown(void **state)
{
	struct suite *s = *state;
	if (!s)
		return 0;
	for (size_t i = 0; i < C_COUNT; i++)
		consumer_stop(s, (enum consumer_id)i);
	kafka_producer_free(s->p, 2000);
	mock_destroy(&s->main);
	mock_destroy(&s->doomed);
	for (size_t i = 0; i < C_COUNT; i++)
		rec_destroy(&s->rec[i]);
	free(s);
	return 0;
}

static void produce(struct kafka_producer *p, const char *topic, const char *key, const char *value)
{
	assert_true(kafka_produce_sync(p, topic, key, strlen(key), value, strlen(value), SEND_MS));
}

static size_t rec_count(struct recorder *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* ---- tests ---- */

/* A synchronously produced message comes back with its key and value, byte for byte (an
 * embedded NUL included). */
/* Runs first, before any message is handled: the consumers' counters are exported at 0 from
 * their start, so that increase() over them sees the first message (a series that first
 * appears at 1 shows no increase to Prometheus). */
static void test_consumer_counters_exist_from_start(void **state)
{
	(void)state;
	char *text = metrics_render("");
	assert_non_null(text);
	assert_non_null(strstr(text, "\nkafka_dlq_messages_total 0\n"));
	assert_non_null(strstr(text, "\nkafka_messages_consumed_total 0\n"));
	free(text);
}

static void test_produce_sync_roundtrip(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_ROUNDTRIP];
	static const char value[] = {'v', 'a', '\0', 'l', '"', '\n'};
	assert_true(
		kafka_produce_sync(s->p, "roundtrip", "room-42", 7, value, sizeof value, SEND_MS));

	assert_int_equal(rec_wait(r, 1), 1);
	assert_true(wait_handled(s->c[C_ROUNDTRIP], 1));
	pthread_mutex_lock(&r->mu);
	struct rec_msg m = r->msgs[0];
	pthread_mutex_unlock(&r->mu);
	assert_string_equal(m.topic, "roundtrip");
	assert_int_equal(m.keylen, 7);
	assert_memory_equal(m.key, "room-42", 7);
	assert_int_equal(m.len, sizeof value);
	assert_memory_equal(m.value, value, sizeof value);
}

/* A message the handler calls poison is copied, same key and value, to "t.dlq" and skipped;
 * the ones around it are applied in order. */
static void test_poison_goes_to_dlq(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_POISON], *dlq = &s->rec[C_DLQ];
	produce(s->p, "t", "k1", "good-1");
	produce(s->p, "t", "k2", "garbage");
	produce(s->p, "t", "k3", "good-2");

	assert_int_equal(rec_wait(r, 3), 3);
	assert_true(wait_handled(s->c[C_POISON], 3));
	assert_int_equal(kafka_consumer_handled(s->c[C_POISON]), 3);
	assert_int_equal(rec_count(r), 3);
	assert_rec(r, 0, "t", "k1", "good-1");
	assert_rec(r, 1, "t", "k2", "garbage");
	assert_rec(r, 2, "t", "k3", "good-2");

	assert_int_equal(rec_wait(dlq, 1), 1);
	assert_rec(dlq, 0, "t.dlq", "k2", "garbage");
}

/* How many of the messages r recorded have key. */
static size_t rec_count_key(struct recorder *r, const char *key)
{
	size_t n = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n && i < REC_MAX; i++)
		n += strcmp(r->msgs[i].key, key) == 0;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Waits until r recorded a message with key (bounded by WAIT_MS). */
static bool rec_wait_key(struct recorder *r, const char *key)
{
	long long deadline = mono_ms() + WAIT_MS;
	while (rec_count_key(r, key) == 0) {
		if (mono_ms() >= deadline)
			return false;
		sleep_ms(50);
	}
	return true;
}

/* The DLQ stalls (its partition has no leader, as while a broker is away) for longer than the
 * consumer waits for a dead letter's acknowledgement: the unusable message is delivered again
 * meanwhile, yet "stall.dlq" ends up with exactly one copy of it.  (A copy used to be produced
 * at every retry, each one queued until the broker took it.)  A second unusable message sent
 * after the DLQ came back proves that the first one's handling is over: its copy follows the
 * first one's on the single DLQ partition. */
static void test_dead_letter_once_while_the_dlq_stalls(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_STALL], *dlq = &s->rec[C_STALL_DLQ];
	assert_int_equal(rd_kafka_mock_partition_set_leader(s->main.mc, "stall.dlq", 0, -1),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	produce(s->p, "stall", "k-poison", "garbage");
	assert_true(rec_wait(r, 1) >= 1);
	/* Longer than one wait for the copy (5 s now, 10 s before) plus the retry pause. */
	sleep_ms(12000);
	assert_int_equal(rec_count_key(dlq, "k-poison"), 0);
	assert_int_equal(kafka_consumer_handled(s->c[C_STALL]), 0);
	assert_int_equal(rd_kafka_mock_partition_set_leader(s->main.mc, "stall.dlq", 0, 1),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);

	assert_true(rec_wait_key(dlq, "k-poison"));
	produce(s->p, "stall", "k-after", "garbage");
	assert_true(rec_wait_key(dlq, "k-after"));
	assert_true(wait_handled(s->c[C_STALL], 2));
	assert_int_equal(rec_count_key(dlq, "k-poison"), 1);
	assert_int_equal(rec_count_key(dlq, "k-after"), 1);
	assert_rec(dlq, 0, "stall.dlq", "k-poison", "garbage");
}

/* KAFKA_RETRY delivers the same message again; the messages before and after it once each, in
 * order. */
static void test_retry_redelivers_in_order(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_RETRY];
	produce(s->p, "retry", "ka", "a");
	produce(s->p, "retry", "kb", "b"); /* the handler answers KAFKA_RETRY the first time */
	produce(s->p, "retry", "kc", "c");

	assert_int_equal(rec_wait(r, 4), 4);
	assert_true(wait_handled(s->c[C_RETRY], 3));
	int exits = thread_exits;
	consumer_stop(s, C_RETRY);
	/* The consumer's thread ran thread_exit once, on itself, before the stop returned. */
	assert_int_equal(thread_exits, exits + 1);
	assert_false(thread_exit_on_test_thread);
	assert_int_equal(rec_count(r), 4);
	assert_rec(r, 0, "retry", "ka", "a");
	assert_rec(r, 1, "retry", "kb", "b");
	assert_rec(r, 2, "retry", "kb", "b");
	assert_rec(r, 3, "retry", "kc", "c");
}

/* The offset is stored only once a message was applied: a consumer of the same group started
 * after the first stopped begins at the message that was never applied, not before it. */
static void test_offset_stored_only_after_applied(void **state)
{
	struct suite *s = *state;
	struct recorder *a = &s->rec[C_OFFSETS_A], *b = &s->rec[C_OFFSETS_B];
	produce(s->p, "offsets", "k1", "first");
	produce(s->p, "offsets", "k2", "second"); /* A's handler always answers KAFKA_RETRY */

	/* "second" reached A's handler, so "first" was applied and its offset stored. */
	assert_true(rec_wait(a, 2) >= 2);
	assert_rec(a, 0, "offsets", "k1", "first");
	assert_rec(a, 1, "offsets", "k2", "second");
	assert_int_equal(kafka_consumer_handled(s->c[C_OFFSETS_A]), 1);
	consumer_stop(s, C_OFFSETS_A);

	assert_non_null(consumer_start(s, C_OFFSETS_B, &s->main, "g-offsets", "offsets"));
	assert_true(rec_wait(b, 1) >= 1);
	assert_rec(b, 0, "offsets", "k2", "second");
}

/* The ping answers true when a broker responds, false within its timeout when none does. */
static void test_producer_ping(void **state)
{
	struct suite *s = *state;
	assert_true(kafka_producer_ping(s->p, 5000));

	char err[512] = "";
	struct kafka_producer *dead = kafka_producer_new("127.0.0.1:1", "test-dead", err,
	                                                 sizeof err);
	if (!dead)
		fail_msg("kafka_producer_new: %s", err);
	long long t0 = mono_ms();
	bool ok = kafka_producer_ping(dead, 1000);
	long long took = mono_ms() - t0;
	kafka_producer_free(dead, 0);
	assert_false(ok);
	assert_true(took < 2500);
}

/* A batch is produced in order and every message reported delivered; the consumer sees the
 * same keys and values in the same order. */
static void test_produce_batch_in_order(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_BATCH];
	static const char *const keys[] = {"r1", "r2", "r1", "r3", "r1"};
	static const char *const values[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}",
	                                     "{\"n\":5}"};
	struct kafka_message msgs[5];
	for (size_t i = 0; i < 5; i++)
		msgs[i] = (struct kafka_message){"batch",   keys[i],           strlen(keys[i]),
		                                 values[i], strlen(values[i]), false,
		                                 "stale"};
	_Atomic bool stop = false;
	assert_int_equal(kafka_produce_batch(s->p, msgs, 5, &stop), 5);
	for (size_t i = 0; i < 5; i++) {
		assert_true(msgs[i].delivered);
		assert_null(msgs[i].error);
	}
	assert_int_equal(rec_wait(r, 5), 5);
	for (size_t i = 0; i < 5; i++)
		assert_rec(r, i, "batch", keys[i], values[i]);
	assert_int_equal(kafka_produce_batch(s->p, msgs, 0, &stop), 0);
}

/* With no broker a batch waits for ever, until its stop flag is set: then it gives up within
 * about a second, reporting every message as not delivered (so the outbox keeps the rows). */
static void test_produce_batch_stops_without_broker(void **state)
{
	(void)state;
	char err[512] = "";
	struct kafka_producer *dead = kafka_producer_new("127.0.0.1:1", "test-dead", err,
	                                                 sizeof err);
	if (!dead)
		fail_msg("kafka_producer_new: %s", err);
	struct kafka_message msgs[2] = {{"batch", "k", 1, "a", 1, true, NULL},
	                                {"batch", "k", 1, "b", 1, true, NULL}};
	_Atomic bool stop = true;
	long long t0 = mono_ms();
	size_t produced = kafka_produce_batch(dead, msgs, 2, &stop);
	long long took = mono_ms() - t0;
	kafka_producer_free(dead, 0);
	assert_int_equal(produced, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_false(msgs[i].delivered);
		assert_non_null(msgs[i].error);
	}
	assert_true(took >= 900);
	if (took >= 5000)
		fail_msg("a stopped batch took %lld ms", took);
}

/* The properties given to kafka_configure() reach every producer and consumer created
 * afterwards; unset ones leave librdkafka's defaults. */
static void test_security_settings_reach_every_client(void **state)
{
	(void)state;
	static const struct kafka_property props[] = {
		{"security.protocol", "sasl_plaintext", false},
		{"sasl.mechanism", "PLAIN", false},
		{"sasl.username", "suite", false},
		{"sasl.password", "pa55-word", true},
		{"ssl.ca.location", "", false},
	};
	char err[512] = "", v[256];
	kafka_configure(props, 5);
	struct kafka_producer *p = kafka_producer_new("127.0.0.1:1", "test-sec", err, sizeof err);
	const char *topics[] = {"sec", NULL};
	struct recorder rec;
	rec_init(&rec);
	struct kafka_consumer *c = p ? kafka_consumer_start("127.0.0.1:1", "g-sec", topics,
	                                                    rec_handler, &rec, NULL, p, err,
	                                                    sizeof err)
	                             : NULL;
	kafka_configure(NULL, 0);
	if (!p || !c)
		fail_msg("client: %s", err);
	assert_true(kafka_producer_setting(p, "security.protocol", v, sizeof v));
	assert_string_equal(v, "sasl_plaintext");
	assert_true(kafka_producer_setting(p, "sasl.mechanisms", v, sizeof v));
	assert_string_equal(v, "PLAIN");
	assert_true(kafka_producer_setting(p, "sasl.username", v, sizeof v));
	assert_string_equal(v, "suite");
	assert_true(kafka_producer_setting(p, "sasl.password", v, sizeof v));
	assert_string_equal(v, "pa55-word");
	assert_true(kafka_consumer_setting(c, "security.protocol", v, sizeof v));
	assert_string_equal(v, "sasl_plaintext");
	assert_true(kafka_consumer_setting(c, "sasl.username", v, sizeof v));
	assert_string_equal(v, "suite");
	assert_true(kafka_consumer_setting(c, "sasl.password", v, sizeof v));
	assert_string_equal(v, "pa55-word");
	/* The suite's own settings stay. */
	assert_true(kafka_producer_setting(p, "enable.idempotence", v, sizeof v));
	assert_string_equal(v, "true");
	assert_true(kafka_consumer_setting(c, "enable.auto.offset.store", v, sizeof v));
	assert_string_equal(v, "false");
	kafka_consumer_stop(c);
	kafka_producer_free(p, 0);
	rec_destroy(&rec);

	/* Without configuration: librdkafka's default. */
	p = kafka_producer_new("127.0.0.1:1", "test-sec", err, sizeof err);
	assert_non_null(p);
	assert_true(kafka_producer_setting(p, "security.protocol", v, sizeof v));
	assert_string_equal(v, "plaintext");
	kafka_producer_free(p, 0);
}

/* A refused setting names the property; the reason (which quotes the value) only when the
 * property is not secret. */
static void test_refused_setting_never_shows_a_secret(void **state)
{
	(void)state;
	char err[512] = "";
	const struct kafka_property bad[] = {{"security.protocol", "no-such-protocol", false}};
	kafka_configure(bad, 1);
	struct kafka_producer *p = kafka_producer_new("127.0.0.1:1", "test-bad", err, sizeof err);
	kafka_configure(NULL, 0);
	assert_null(p);
	assert_non_null(strstr(err, "security.protocol"));
	assert_non_null(strstr(err, "no-such-protocol"));

	const struct kafka_property secret[] = {{"security.protocol", "hunter2-secret", true}};
	kafka_configure(secret, 1);
	p = kafka_producer_new("127.0.0.1:1", "test-bad", err, sizeof err);
	kafka_configure(NULL, 0);
	assert_null(p);
	assert_non_null(strstr(err, "security.protocol"));
	assert_null(strstr(err, "hunter2"));
}

/* How often value was recorded by r. */
static size_t rec_count_value(struct recorder *r, const char *value)
{
	size_t n = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		n += strcmp(r->msgs[i].value, value) == 0;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* A replay of topic on the main cluster that must reach every partition's end. */
static void replay_ok(struct suite *s, const char *group, const char *topic,
                      struct kafka_replay_stats *stats)
{
	char err[256] = "";
	if (!kafka_replay(s->main.brokers, group, topic, rec_handler, &s->rec[C_REPLAY], NULL,
	                  WAIT_MS, stats, err, sizeof err))
		fail_msg("kafka_replay %s: %s", topic, err);
}

/* A replay hands every message of every partition to the handler, from the start each time
 * (one that asks to retry again, an unusable one skipped), and ends at the end; it commits
 * nothing: a consumer of the group it named starts from the beginning afterwards. */
static void test_replay_reads_every_partition_to_its_end(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_REPLAY];
	struct kafka_replay_stats stats;
	assert_int_equal(rd_kafka_mock_topic_create(s->main.mc, "replay", 2, 1),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	static const char *const keys[] = {"k1", "k2", "k3", "k4", "k5", "k6"};
	static const char *const values[] = {"one", "garbage", "again", "four", "five", "six"};
	for (size_t i = 0; i < 6; i++)
		produce(s->p, "replay", keys[i], values[i]);

	replay_ok(s, "g-replay", "replay", &stats);
	assert_int_equal(stats.partitions, 2);
	assert_int_equal(stats.applied, 5);
	assert_int_equal(stats.skipped, 1);
	assert_int_equal(rec_count(r), 7);
	assert_int_equal(rec_count_value(r, "again"), 2);
	for (size_t i = 0; i < 6; i++)
		if (i != 2)
			assert_int_equal(rec_count_value(r, values[i]), 1);

	/* Again from the start, up to the new end. */
	produce(s->p, "replay", "k7", "seven");
	replay_ok(s, "g-replay", "replay", &stats);
	assert_int_equal(stats.applied, 6);
	assert_int_equal(stats.skipped, 1);
	assert_int_equal(rec_count(r), 14);
	assert_int_equal(rec_count_value(r, "one"), 2);
	assert_int_equal(rec_count_value(r, "seven"), 1);

	/* Nothing committed for the group: its consumer reads all seven. */
	assert_non_null(consumer_start(s, C_REPLAYED, &s->main, "g-replay", "replay"));
	assert_int_equal(rec_wait(&s->rec[C_REPLAYED], 7), 7);
	assert_int_equal(rec_count_value(&s->rec[C_REPLAYED], "one"), 1);
}

/* A replay of an empty topic ends at once; one that is stopped, one without a broker (bounded
 * by its timeout) and one with a setting librdkafka refuses (kafka_configure reaches it too)
 * fail with the reason.  (A topic that does not exist cannot be tried here: the mock cluster
 * creates every topic asked for.) */
static void test_replay_is_bounded(void **state)
{
	struct suite *s = *state;
	struct recorder *r = &s->rec[C_REPLAY];
	struct kafka_replay_stats stats;
	char err[256] = "";
	assert_int_equal(rd_kafka_mock_topic_create(s->main.mc, "replay-empty", 3, 1),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	replay_ok(s, "g-replay-empty", "replay-empty", &stats);
	assert_int_equal(stats.partitions, 3);
	assert_int_equal(stats.applied, 0);

	_Atomic bool stop = true;
	assert_false(kafka_replay(s->main.brokers, "g-replay", "replay", rec_handler, r, &stop,
	                          WAIT_MS, &stats, err, sizeof err));
	assert_non_null(strstr(err, "stopped"));

	long long t0 = mono_ms();
	assert_false(kafka_replay("127.0.0.1:1", "g-replay", "replay", rec_handler, r, NULL, 1500,
	                          &stats, err, sizeof err));
	long long took = mono_ms() - t0;
	assert_non_null(strstr(err, "timed out"));
	assert_true(took >= 1500 && took < 4000);

	const struct kafka_property bad[] = {{"security.protocol", "no-such-protocol", false}};
	kafka_configure(bad, 1);
	bool ok = kafka_replay(s->main.brokers, "g-replay", "replay", rec_handler, r, NULL, WAIT_MS,
	                       &stats, err, sizeof err);
	kafka_configure(NULL, 0);
	assert_false(ok);
	assert_non_null(strstr(err, "security.protocol"));
}

/* Stopping a consumer is bounded even when its broker has disappeared. */
static void test_consumer_stop_without_broker(void **state)
{
	struct suite *s = *state;
	char err[512] = "";
	struct kafka_producer *p = kafka_producer_new(s->doomed.brokers, "test-doomed", err,
	                                              sizeof err);
	if (!p)
		fail_msg("kafka_producer_new: %s", err);
	bool sent = kafka_produce_sync(p, "t", "k1", 2, "hello", 5, SEND_MS);
	kafka_producer_free(p, 2000);
	assert_true(sent);
	/* Consumed and applied: in the group, with an assignment and an offset to commit. */
	assert_int_equal(rec_wait(&s->rec[C_STOP], 1), 1);
	assert_true(wait_handled(s->c[C_STOP], 1));

	mock_destroy(&s->doomed);
	long long t0 = mono_ms();
	consumer_stop(s, C_STOP);
	long long took = mono_ms() - t0;
	if (took >= 8000)
		fail_msg("kafka_consumer_stop took %lld ms without a broker", took);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consumer_counters_exist_from_start),
		cmocka_unit_test(test_produce_sync_roundtrip),
		cmocka_unit_test(test_poison_goes_to_dlq),
		cmocka_unit_test(test_dead_letter_once_while_the_dlq_stalls),
		cmocka_unit_test(test_retry_redelivers_in_order),
		cmocka_unit_test(test_offset_stored_only_after_applied),
		cmocka_unit_test(test_replay_reads_every_partition_to_its_end),
		cmocka_unit_test(test_replay_is_bounded),
		cmocka_unit_test(test_producer_ping),
		cmocka_unit_test(test_produce_batch_in_order),
		cmocka_unit_test(test_produce_batch_stops_without_broker),
		cmocka_unit_test(test_security_settings_reach_every_client),
		cmocka_unit_test(test_refused_setting_never_shows_a_secret),
		cmocka_unit_test(test_consumer_stop_without_broker),
	};
	return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
