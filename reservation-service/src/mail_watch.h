/* mail_watch: what the invitations' SMTP sends show about our side of the relay (mail.h's
 * relay failures: the server refusing this client, its login, its sender address, or TLS),
 * for operators.  Such a failure leaves the message pending, retried for MAIL_RETRY_HOURS, so
 * that the queue survives a rotated password or a sender address the relay no longer takes;
 * this module makes it visible: the counter mail_relay_refusals_total{step} in /metrics, and
 * the /health check "mail_relay", degraded from a refusal until a send gets past MAIL FROM
 * again.  State is process-wide; thread-safe (atomics). */
#ifndef RES_MAIL_WATCH_H
#define RES_MAIL_WATCH_H

#include <stddef.h>

#include "health.h"
#include "mail.h"

/* struct mail_smtp's observer (arg unused): counts and remembers a relay failure, or notes a
 * send that got past it. */
void res_mail_watch_observe(const struct mail_result *res, void *arg);

/* The health check (struct health_check): degraded with the reason (the step and the reply
 * code, what to check; no address or secret) while the last relay failure is newer than the
 * last send that passed; ok otherwise, and before any send. */
enum health_state res_mail_watch_check(char *detail, size_t size);

#endif
