/* The relay's health as the sends see it (mail_watch.h). */
#include "mail_watch.h"

#include <stdatomic.h>
#include <stdio.h>

#include "metrics.h"
#include "timefmt.h"

/* Wall-clock milliseconds of the last relay failure and of the last send that passed it (0:
 * none yet), and the failure's step and reply code. */
static _Atomic long long refused_ms, passed_ms;
static _Atomic int refused_step;
static _Atomic long refused_code;

void res_mail_watch_observe(const struct mail_result *res, void *arg)
{
	(void)arg;
	long long now = timefmt_now_ms();
	if (res->status != MAIL_SENT && res->relay) {
		refused_step = (int)res->step;
		refused_code = res->smtp_code;
		refused_ms = now;
		metrics_counter_add_labeled("mail_relay_refusals_total",
		                            "SMTP sends refused over our side of the relay (login, "
		                            "sender address, TLS), by step; retried, not failed",
		                            "step", mail_step_name(res->step), 1);
	} else if (res->status == MAIL_SENT || res->step >= MAIL_STEP_RECIPIENT) {
		passed_ms = now;
	}
}

/* What to check for a refusal at step: the setting that decides it. */
static const char *mail_watch_hint(enum mail_step step, long code)
{
	if (code == 530 || step == MAIL_STEP_AUTH)
		return "check SMTP_USER and SMTP_PASSWORD";
	if (step == MAIL_STEP_SENDER)
		return "check that the relay lets this client send as SMTP_FROM";
	if (step == MAIL_STEP_STARTTLS || step == MAIL_STEP_HELLO)
		return "check that the server of SMTP_URL offers STARTTLS with a trusted certificate";
	return "check SMTP_URL and that the relay accepts this client";
}

enum health_state res_mail_watch_check(char *detail, size_t size)
{
	long long refused = refused_ms, passed = passed_ms;
	if (refused == 0 || passed > refused)
		return HEALTH_OK;
	enum mail_step step = (enum mail_step)refused_step;
	long code = refused_code;
	char reply[24] = "";
	if (code > 0)
		snprintf(reply, sizeof reply, " (%ld)", code);
	snprintf(detail, size,
	         "the SMTP server refused us at %s%s %lld s ago; invitations wait and are retried "
	         "for MAIL_RETRY_HOURS: %s",
	         mail_step_name(step), reply, (timefmt_now_ms() - refused) / 1000,
	         mail_watch_hint(step, code));
	return HEALTH_DEGRADED;
}
