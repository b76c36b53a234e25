/* reservation-service: configuration, wiring, signals, start and stop. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "countof.h"
#include "deliver.h"
#include "embedded.h"
#include "events.h"
#include "handlers.h"
#include "health.h"
#include "kafka.h"
#include "log.h"
#include "mail.h"
#include "mail_watch.h"
#include "mailer.h"
#include "meeting.h"
#include "metrics.h"
#include "releaser.h"
#include "replay.h"
#include "repo.h"
#include "repo_mail.h"
#include "repo_waitlist.h"
#include "repo_webhooks.h"
#include "rnd.h"
#include "routes.h"
#include "svc.h"
#include "timefmt.h"
#include "validate.h"
#include "webhook_send.h"

#define SERVICE "reservation-service"
#define OUTBOX_LOCK_KEY 5002
#define WEBHOOK_RETRY_MAX_MS 3600000 /* the longest pause between two attempts */
#define MAIL_RETRY_MAX_MS 3600000
/* The mail senders' heartbeat (migrations/014 and 016: mail_sender_alive, whose 10-minute window it
 * must stay well within). */
#define MAIL_SENDER_BEAT_MS 30000
/* /health says degraded when no beat was recorded for this long (4 beats; longer when a send
 * may take longer: a sender writes the beat between two sends), well within the window. */
#define MAIL_SENDER_STALE_MS (4 * MAIL_SENDER_BEAT_MS)

struct reservation_config {
	struct svc_config common;
	char *room_events_topic, *user_events_topic, *reservation_events_topic, *consumer_group;
	long long min_minutes, max_minutes, horizon_days;
	long long idempotency_retention_s;
	long long room_replay_timeout_s;
	long long max_occurrences;
	/* Webhooks (docs/api.md#webhooks) and the delivery queue's retention. */
	char *webhook_retry_hours;
	long long webhook_retry_base_ms, webhook_timeout_ms, webhook_senders;
	bool webhook_allow_private;
	bool webhook_allow_loopback;
	long long delivery_retention_s;
	/* E-mail invitations (docs/api.md#invitations); mail is off without smtp_url. */
	char *smtp_url, *smtp_user, *smtp_password, *smtp_from, *mail_retry_hours;
	long long mail_retry_base_ms, mail_timeout_ms, mail_senders;
	/* Abuse limits on attendees (docs/operations.md#mail-abuse): the invitations an organizer's
	 * changes may queue per rolling hour (migration 017), the domains attendees may be at. */
	long long mail_max_recipients_per_hour;
	long long release_interval_ms;
	char *attendee_domains;
	/* Online meeting links (docs/api.md#attendees-and-online-meetings). */
	char *jitsi_base_url, *jitsi_app_id, *jitsi_app_secret;
	/* The business clock may be moved by tests (clock.h, docs/operations.md#test-clock). */
	bool test_clock;
};

/* SMTP_URL: empty (mail off) or an smtp:// or smtps:// URL (mail.h). */
static bool smtp_url_valid(const char *url, char *why, size_t whylen)
{
	if (!*url || mail_smtp_url_valid(url, NULL))
		return true;
	snprintf(why, whylen,
	         "must be smtp://host[:port] or smtps://host[:port], without "
	         "credentials (SMTP_USER, SMTP_PASSWORD)");
	return false;
}

/* SMTP_FROM: empty or a plain e-mail address whose domain fits a Message-ID. */
static bool smtp_from_valid(const char *from, char *why, size_t whylen)
{
	if (!*from || res_mail_from_valid(from))
		return true;
	snprintf(why, whylen,
	         "must be a plain e-mail address (name@example.com) with a domain of at most %d "
	         "characters",
	         MAIL_MESSAGE_ID_MAX - RES_MAIL_MESSAGE_ID_LEFT_MAX - 1);
	return false;
}

#define RES_CFG struct reservation_config
static const struct cfg_param reservation_params[] = {
	SVC_COMMON_PARAMS(RES_CFG, common, "5002"),
	CFG_REQUIRED_STR(RES_CFG, "KAFKA_BROKER_URL", common.kafka_broker_url, 1, 4096),
	CFG_STR(RES_CFG, "ROOM_EVENTS_TOPIC", room_events_topic, "room_events", 1, 249),
	CFG_STR(RES_CFG, "USER_EVENTS_TOPIC", user_events_topic, "user_events", 1, 249),
	CFG_STR(RES_CFG, "RESERVATION_EVENTS_TOPIC", reservation_events_topic, "reservation_events",
                1, 249),
	CFG_STR(RES_CFG, "KAFKA_CONSUMER_GROUP", consumer_group, "reservation-service", 1, 249),
	CFG_INT(RES_CFG, "MIN_DURATION_MINUTES", min_minutes, "5", 1, 1440),
	CFG_INT(RES_CFG, "MAX_DURATION_MINUTES", max_minutes, "1440", 1, 44640),
	CFG_INT(RES_CFG, "BOOKING_HORIZON_DAYS", horizon_days, "365", 1, 3650),
	CFG_INT(RES_CFG, "MAX_OCCURRENCES", max_occurrences, "200", 1, 1000),
	CFG_INT(RES_CFG, "IDEMPOTENCY_KEY_RETENTION_SECONDS", idempotency_retention_s, "86400", 60,
                315360000),
	CFG_INT(RES_CFG, "ROOM_EVENTS_REPLAY_TIMEOUT_SECONDS", room_replay_timeout_s, "300", 0,
                86400),
	CFG_STR_CHECKED(RES_CFG, "WEBHOOK_RETRY_HOURS", webhook_retry_hours, "24", 1, 32,
                        deliver_hours_valid),
	CFG_INT(RES_CFG, "WEBHOOK_RETRY_BASE_MS", webhook_retry_base_ms, "30000", 10, 3600000),
	CFG_INT(RES_CFG, "WEBHOOK_TIMEOUT_MS", webhook_timeout_ms, "10000", 100, 60000),
	CFG_INT(RES_CFG, "WEBHOOK_SENDERS", webhook_senders, "2", 1, DELIVER_MAX_THREADS),
	CFG_BOOL(RES_CFG, "WEBHOOK_ALLOW_PRIVATE", webhook_allow_private, "false"),
	CFG_BOOL(RES_CFG, "WEBHOOK_ALLOW_LOOPBACK", webhook_allow_loopback, "false"),
	CFG_INT(RES_CFG, "DELIVERY_RETENTION_SECONDS", delivery_retention_s, "604800", 0,
                315360000),
	CFG_STR_CHECKED(RES_CFG, "SMTP_URL", smtp_url, "", 0, 2048, smtp_url_valid),
	CFG_STR(RES_CFG, "SMTP_USER", smtp_user, "", 0, 256),
	CFG_STR(RES_CFG, "SMTP_PASSWORD", smtp_password, "", 0, 1024),
	CFG_STR_CHECKED(RES_CFG, "SMTP_FROM", smtp_from, "", 0, MAIL_ADDRESS_MAX, smtp_from_valid),
	CFG_STR_CHECKED(RES_CFG, "MAIL_RETRY_HOURS", mail_retry_hours, "24", 1, 32,
                        deliver_hours_valid),
	CFG_INT(RES_CFG, "MAIL_RETRY_BASE_MS", mail_retry_base_ms, "30000", 10, 3600000),
	CFG_INT(RES_CFG, "MAIL_TIMEOUT_MS", mail_timeout_ms, "30000", 1000, 300000),
	CFG_INT(RES_CFG, "MAIL_SENDERS", mail_senders, "2", 1, DELIVER_MAX_THREADS),
	CFG_INT(RES_CFG, "MAIL_MAX_RECIPIENTS_PER_HOUR", mail_max_recipients_per_hour, "500",
                RES_ATTENDEES_MAX, 1000000),
	CFG_STR_CHECKED(RES_CFG, "ATTENDEE_DOMAINS", attendee_domains, "", 0,
                        RES_ATTENDEE_DOMAINS_MAX_LEN, res_validate_attendee_domains_valid),
	CFG_STR_CHECKED(RES_CFG, "JITSI_BASE_URL", jitsi_base_url, "https://meet.jit.si", 1,
                        RES_MEETING_BASE_MAX, res_meeting_base_valid),
	CFG_STR(RES_CFG, "JITSI_APP_ID", jitsi_app_id, "", 0, 256),
	CFG_STR_CHECKED(RES_CFG, "JITSI_APP_SECRET", jitsi_app_secret, "", 0, 4096,
                        res_meeting_secret_valid),
	CFG_INT(RES_CFG, "RELEASE_INTERVAL_MS", release_interval_ms, "15000", 100, 3600000),
	CLOCK_CFG_PARAM(RES_CFG, test_clock),
};

static const struct cfg_check reservation_checks[] = {
	CFG_CHECK_LE(RES_CFG, min_minutes, max_minutes),
	CFG_CHECK_REQUIRES(RES_CFG, jitsi_app_id, jitsi_app_secret),
	CFG_CHECK_REQUIRES(RES_CFG, jitsi_app_secret, jitsi_app_id),
	CFG_CHECK_REQUIRES(RES_CFG, smtp_url, smtp_from),
	CFG_CHECK_REQUIRES(RES_CFG, smtp_password, smtp_user),
};
#undef RES_CFG

static const struct cfg_table reservation_config_table = {
	.params = reservation_params,
	.nparams = countof(reservation_params),
	.checks = reservation_checks,
	.nchecks = countof(reservation_checks),
};

/* After the migrations: rooms copied before their details were kept, and not filled in since,
 * get them from a replay of room_events (replay.h, docs/operations.md#upgrading-to-room-search). */
static struct res_replay_config replay_config;
static struct res_replay *replay;

/* The webhooks' delivery queue (deliver.h), started once the schema exists. */
static struct deliver_config webhook_queue_config;
static struct res_webhook_sender webhook_sender;
static struct deliver *webhook_queue;
static _Atomic bool webhook_queue_failed; /* deliver_start failed: /health says so */

/* The invitations' queue (mailer.h), when mail is on. */
static struct deliver_config mail_queue_config;
static struct res_mailer mailer;
static struct deliver *mail_queue;
static bool mail_on;
static bool mail_announced;
/* This process in mail_senders: host name, process id and a random part. */
static char mail_instance[RES_MAIL_INSTANCE_MAX];
static _Atomic bool mail_queue_failed; /* deliver_start failed: /health says so */
/* Wall-clock ms of the last heartbeat recorded (by any route), and of the last one written on
 * a sender's own session; 0: none yet.  A beat older than mail_stale_ms shows in /health. */
static _Atomic long long mail_beat_ms, mail_own_beat_ms;
static long long mail_stale_ms;

/* The no-show releaser (releaser.h), started once the schema exists. */
static long long release_interval_ms;
static const char *release_topic;
static struct res_releaser *releaser;
static _Atomic bool releaser_failed; /* res_releaser_start failed: /health says so */

/* At the stop signal: a replay still running ends before the drain is over, and so do the
 * webhook deliveries in progress. */
static void stop_background(void)
{
	res_replay_signal(replay);
	deliver_signal(webhook_queue);
	deliver_signal(mail_queue);
}

/* The mail senders' heartbeat (deliver_config.heartbeat): on the sender's own session, or,
 * when it has none or it failed, through the pool (review 14d-A M3: a database that refuses new
 * sessions but serves the pool's would otherwise turn mail off while the API still books). */
static bool mail_beat(PGconn *session, void *arg)
{
	(void)arg;
	bool own = session && res_repo_mail_beat(session, mail_instance) == DB_OK;
	bool pooled = !own && res_repo_mail_beat(NULL, mail_instance) == DB_OK;
	long long now = timefmt_now_ms();
	if (own)
		mail_own_beat_ms = now;
	if (own || pooled)
		mail_beat_ms = now;
	if (pooled)
		log_warn("the mail senders' heartbeat was written through the pool: their own "
		         "database sessions fail");
	return own || pooled;
}

/* mail_sender_last_beat_age_seconds: since the last heartbeat recorded. */
static double mail_beat_age(void)
{
	long long beat = mail_beat_ms;
	return beat ? (double)(timefmt_now_ms() - beat) / 1000.0 : 0;
}

/* Mail is on in the whole deployment while some replica with SMTP_URL runs its senders
 * (repo_mail.h): this one records itself before it serves, or says what its lack of SMTP_URL
 * means. */
static enum db_status mail_announce(void)
{
	long long others = 0;
	enum db_status st = mail_on ? res_repo_mail_beat(NULL, mail_instance)
	                            : res_repo_mail_senders_alive(mail_instance, &others);
	if (st != DB_OK)
		return st;
	if (mail_on) {
		mail_beat_ms = mail_own_beat_ms = timefmt_now_ms();
		log_info("mail on: invitations are sent (mail sender %s)", mail_instance);
	} else if (others > 0)
		log_warn(
			"mail off here (no SMTP_URL), but %lld mail sender(s) of other replicas run: "
			"changes made here are invited by mail too, sent by them",
			others);
	else
		log_info(
			"mail off (no SMTP_URL, and no mail sender runs): no invitation is queued");
	mail_announced = true;
	return DB_OK;
}

static enum db_status after_migrations(void)
{
	if (!mail_announced) {
		enum db_status ms = mail_announce();
		if (ms != DB_OK)
			return ms;
	}
	enum db_status st = res_replay_start(&replay_config, &replay);
	if (!webhook_queue && db_err_kind(st) != ERR_UNAVAILABLE &&
	    !(webhook_queue = deliver_start(&webhook_queue_config))) {
		log_error("cannot start the webhook senders");
		webhook_queue_failed = true;
	}
	if (mail_on && !mail_queue && db_err_kind(st) != ERR_UNAVAILABLE &&
	    !(mail_queue = deliver_start(&mail_queue_config))) {
		log_error("cannot start the mail senders");
		mail_queue_failed = true;
	}
	if (!releaser && !releaser_failed && db_err_kind(st) != ERR_UNAVAILABLE &&
	    !(releaser = res_releaser_start(release_interval_ms, release_topic))) {
		log_error("cannot start the no-show releaser");
		releaser_failed = true;
	}
	return st;
}

/* /health: a releaser that could not start leaves no-shows holding their rooms. */
static enum health_state releaser_check(char *detail, size_t size)
{
	if (!releaser_failed)
		return HEALTH_OK;
	snprintf(detail, size, "the no-show releaser could not start");
	return HEALTH_DOWN;
}

/* /health: webhook senders that could not start leave deliveries pending for good. */
static enum health_state webhook_senders_check(char *detail, size_t size)
{
	if (!webhook_queue_failed)
		return HEALTH_OK;
	snprintf(detail, size, "the webhook senders could not start");
	return HEALTH_DOWN;
}

/* /health: the same for the invitations (mail on); and their heartbeat: mail reads as off
 * for every replica 10 minutes after the last one (migrations/016_mail_sender_window.sql), so
 * a beat not recorded for mail_stale_ms, or recorded only through the pool, is shown early. */
static enum health_state mail_senders_check(char *detail, size_t size)
{
	if (mail_queue_failed) {
		snprintf(detail, size, "the mail senders could not start");
		return HEALTH_DOWN;
	}
	long long beat = mail_beat_ms, own = mail_own_beat_ms, now = timefmt_now_ms();
	if (!mail_queue || !beat)
		return HEALTH_OK;
	if (now - beat > mail_stale_ms) {
		snprintf(
			detail, size,
			"the mail senders' heartbeat was not recorded for %lld s: 10 minutes without "
			"one turn mail off (changes then queue no invitation)",
			(now - beat) / 1000);
		return HEALTH_DEGRADED;
	}
	if (now - own > mail_stale_ms) {
		snprintf(
			detail, size,
			"the mail senders cannot use their own database sessions (for %lld s): the "
			"heartbeat goes through the pool, invitations wait",
			(now - own) / 1000);
		return HEALTH_DEGRADED;
	}
	return HEALTH_OK;
}

static const struct health_check checks[] = {
	{"webhook_senders", false, webhook_senders_check},
	{"mail_senders", false, mail_senders_check},
	{"mail_relay", false, res_mail_watch_check},
	{"releaser", false, releaser_check},
};

int main(int argc, char **argv)
{
	static struct reservation_config cfg;
	(void)argv;

	svc_init(SERVICE, &reservation_config_table, &cfg, &cfg.common);
	clock_configure(cfg.test_clock);
	if (argc > 1) {
		fprintf(stderr, "usage: " SERVICE " (configured by environment variables)\n");
		return 2;
	}
	struct auth_config auth = svc_auth(&cfg.common);
	/* Read by the quota trigger of migration 017 in every session of this process. */
	char quota[24];
	snprintf(quota, sizeof quota, "%lld", cfg.mail_max_recipients_per_hour);
	db_configure_setting("res.mail_max_recipients_per_hour", quota);
	res_validate_set_attendee_domains(cfg.attendee_domains);
	struct res_rules rules = {{cfg.min_minutes, cfg.max_minutes, cfg.horizon_days},
	                          cfg.reservation_events_topic,
	                          cfg.max_occurrences};
	res_handlers_init(&rules);
	release_interval_ms = cfg.release_interval_ms;
	release_topic = cfg.reservation_events_topic;
	if (!res_meeting_init(cfg.jitsi_base_url, cfg.jitsi_app_id, cfg.jitsi_app_secret))
		return 1; /* cannot happen: the configuration table checked the URL */
	struct res_events_topics topics = {cfg.room_events_topic, cfg.user_events_topic,
	                                   cfg.reservation_events_topic};
	replay_config = (struct res_replay_config){cfg.common.kafka_broker_url, cfg.consumer_group,
	                                           &topics, cfg.room_replay_timeout_s * 1000};
	const char *consume[] = {cfg.room_events_topic, cfg.user_events_topic, NULL};
	long long retry_window_ms = 0;
	char why[128];
	deliver_hours_ms(cfg.webhook_retry_hours, &retry_window_ms, why, sizeof why);
	webhook_sender = (struct res_webhook_sender){
		cfg.webhook_timeout_ms, cfg.webhook_allow_private, cfg.webhook_allow_loopback};
	webhook_queue_config = (struct deliver_config){
		.kind = RES_WEBHOOK_KIND,
		.send = res_webhook_send,
		.arg = &webhook_sender,
		.threads = (int)cfg.webhook_senders,
		.retry_base_ms = cfg.webhook_retry_base_ms,
		.retry_max_ms = WEBHOOK_RETRY_MAX_MS,
		.retry_window_ms = retry_window_ms,
		.send_timeout_ms = cfg.webhook_timeout_ms,
	};
	long long mail_window_ms = 0;
	deliver_hours_ms(cfg.mail_retry_hours, &mail_window_ms, why, sizeof why);
	mail_on = cfg.smtp_url[0] != '\0';
	mailer = (struct res_mailer){{cfg.smtp_url, cfg.smtp_user, cfg.smtp_password, cfg.smtp_from,
	                              (long)cfg.mail_timeout_ms, res_mail_watch_observe, NULL}};
	char host[64] = "", *nonce = rnd_name32(6);
	gethostname(host, sizeof host - 1);
	snprintf(mail_instance, sizeof mail_instance, "%s/%ld/%s", host, (long)getpid(),
	         nonce ? nonce : "x");
	free(nonce);
	mail_queue_config = (struct deliver_config){
		.kind = RES_MAIL_KIND,
		.send = res_mail_send,
		.arg = &mailer,
		.threads = (int)cfg.mail_senders,
		.retry_base_ms = cfg.mail_retry_base_ms,
		.retry_max_ms = MAIL_RETRY_MAX_MS,
		.retry_window_ms = mail_window_ms,
		.send_timeout_ms = cfg.mail_timeout_ms,
		.heartbeat = mail_beat,
		.heartbeat_ms = MAIL_SENDER_BEAT_MS,
	};
	mail_stale_ms = MAIL_SENDER_STALE_MS > cfg.mail_timeout_ms + 2 * MAIL_SENDER_BEAT_MS
	                        ? MAIL_SENDER_STALE_MS
	                        : cfg.mail_timeout_ms + 2 * MAIL_SENDER_BEAT_MS;
	if (mail_on)
		metrics_register_gauge(
			"mail_sender_last_beat_age_seconds",
			"Seconds since this replica's mail senders last recorded their "
			"heartbeat (mail reads as off 10 minutes after the last one)",
			mail_beat_age);
	const struct sweep_table sweeps[] = {
		{"idempotency_keys", res_repo_sweep_idempotency_keys_sql,
	         cfg.idempotency_retention_s},
		{"deliveries", deliver_sweep_sql, cfg.delivery_retention_s},
		{"delivery_targets", deliver_targets_sweep_sql, cfg.delivery_retention_s},
		{"mail_payloads", res_mail_sweep_sql, cfg.delivery_retention_s},
		{"mail_quota", res_repo_sweep_mail_quota_sql, RES_MAIL_QUOTA_WINDOW_S},
		/* Finished waitlist entries, kept as long as the deliveries that told about them. */
		{"waitlist", res_repo_sweep_waitlist_sql, cfg.delivery_retention_s},
	};
	size_t nroutes;
	const struct http_route *routes = res_routes_served(cfg.test_clock, &nroutes);
	struct svc_service service = {
		.name = SERVICE,
		.cfg = &cfg.common,
		.auth = &auth,
		.routes = routes,
		.nroutes = nroutes,
		.migrations = service_migrations,
		.after_migrations = after_migrations,
		.on_stop = stop_background,
		.nmigrations = service_migrations_count,
		.openapi = service_openapi,
		.outbox_lock_key = OUTBOX_LOCK_KEY,
		.consume_topics = consume,
		.consumer_group = cfg.consumer_group,
		.consume = res_events_handle,
		.consume_arg = &topics,
		.sweeps = sweeps,
		.nsweeps = countof(sweeps),
		.extra_checks = checks,
		.nextra_checks = countof(checks),
	};
	int rc = svc_serve(&service);
	/* The replay uses the database pool, which svc_exit closes. */
	res_replay_stop(replay);
	res_releaser_stop(releaser);
	deliver_stop(webhook_queue);
	deliver_stop(mail_queue);
	/* Stopped cleanly: this replica's senders no longer count for mail being on. */
	if (mail_queue && res_repo_mail_gone(mail_instance) != DB_OK)
		log_warn("mail sender %s could not be removed from mail_senders (it expires)",
		         mail_instance);
	svc_exit(&reservation_config_table, &cfg);
	return rc;
}
