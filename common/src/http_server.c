/* The civetweb lifecycle: start with the suite's options, the callbacks civetweb calls outside a
 * request (its own error page, log lines, worker thread exit), drain and stop. */
#include "http_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <civetweb.h>

#include "db.h"
#include "log.h"
#include "rnd.h"
#include "timefmt.h"

_Thread_local bool http_plain_error;

/* civetweb's own errors (malformed request, headers over max_request_size…) in the standard JSON
 * shape too; the connection is closed afterwards. */
static int http_error_page(struct mg_connection *conn, int status, const char *msg)
{
	(void)msg;
	if (http_plain_error)
		return 1;
	enum err_kind kind = status == 404   ? ERR_NOT_FOUND
	                     : status == 405 ? ERR_METHOD_NOT_ALLOWED
	                     : status == 413 ? ERR_PAYLOAD_TOO_LARGE
	                     : status >= 500 ? ERR_INTERNAL
	                                     : ERR_BAD_REQUEST;
	char id[RND_UUID_LEN];
	if (!rnd_uuid(id))
		snprintf(id, sizeof id, "-");
	const char *message = status == 413 || status == 431 ? "request headers too large"
	                      : status >= 500                ? NULL
	                                                     : "malformed request";
	json_t *body = err_body(kind, message, id, NULL, timefmt_now_ms());
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	if (!text)
		return 1;
	mg_printf(conn,
	          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	          "X-Request-ID: %s\r\nConnection: close\r\n\r\n%s",
	          err_status(kind), mg_get_response_code_text(conn, err_status(kind)), strlen(text),
	          id, text);
	free(text);
	return 0;
}

static int http_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warn("civetweb: %s", message);
	return 1;
}

static int http_log_access(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	(void)message;
	return 1; /* we write our own access log line */
}

static struct http_server *http_thread_owner;

/* A worker thread between connections keeps no reply buffers: with NUM_THREADS threads that
 * each served some connection once, kept buffers were most of a service's resident memory. */
static void http_connection_closed(const struct mg_connection *conn)
{
	(void)conn;
	http_reply_thread_free();
}

static void http_exit_thread(const struct mg_context *ctx, int thread_type, void *user)
{
	(void)ctx;
	(void)thread_type;
	(void)user;
	db_thread_close();
	http_reply_thread_free();
	if (http_thread_owner && http_thread_owner->opts->thread_exit)
		http_thread_owner->opts->thread_exit();
}

struct http_server *http_start(const struct http_options *opts, char *err, size_t errlen)
{
	struct http_server *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->opts = opts;
	http_thread_owner = s;

	char ports[80], threads[24], timeout[24];
	snprintf(ports, sizeof ports, "%s:%lld", opts->listen_host ? opts->listen_host : "0.0.0.0",
	         opts->port);
	snprintf(threads, sizeof threads, "%lld", opts->num_threads);
	snprintf(timeout, sizeof timeout, "%lld",
	         opts->header_timeout_ms > 0 ? opts->header_timeout_ms : 5000);
	/* civetweb 1.15 has no option for the header alone (measured on the Debian build, see
	 * docs/operations.md#connections-and-timeouts): request_timeout_ms bounds the first
	 * request's line and headers, counted from the accept, and is also the limit of a stalled
	 * body read or reply write; keep_alive_timeout_ms bounds the wait for the next request
	 * on a kept-alive connection.  Both are the header timeout, so a connection that sends
	 * nothing, or an incomplete header, gives its worker back after it. */
	const char *options[] = {"listening_ports", ports, "num_threads", threads,
	                         "request_timeout_ms", timeout, "keep_alive_timeout_ms", timeout,
	                         "decode_url", "no",
	                         /* Nagle + delayed ACK would add ~40 ms to a keep-alive reply
	                          * whose last segment is small. */
	                         "tcp_nodelay", "1", "enable_keep_alive", "yes", "max_request_size",
	                         "16384", "linger_timeout_ms", "100",
	                         /* A burst of new connections waits in the kernel's backlog
	                          * until the listener takes it (civetweb's default is 200). */
	                         "listen_backlog", "1024", NULL};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof cb);
	cb.begin_request = http_begin_request;
	cb.log_message = http_log_message;
	cb.http_error = http_error_page;
	cb.log_access = http_log_access;
	cb.exit_thread = http_exit_thread;
	cb.connection_close = http_connection_closed;

	mg_init_library(0);
	s->ctx = mg_start(&cb, s, options);
	if (!s->ctx) {
		snprintf(err, errlen, "cannot listen on %s (port in use or not permitted)", ports);
		mg_exit_library();
		free(s);
		http_thread_owner = NULL;
		return NULL;
	}
	return s;
}

void http_drain(struct http_server *s)
{
	s->draining = 1;
}

/* The port a socket is bound to, -1 when it is not an IPv4/IPv6 socket. */
static long long http_socket_port(int fd)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof addr;
	if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
		return -1;
	if (addr.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&addr)->sin_port);
	if (addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&addr)->sin6_port);
	return -1;
}

/* Refuses new connections before civetweb stops.  mg_stop() closes the listening socket only
 * once its acceptor thread has noticed the stop, after a poll of up to 2 s, and it accepts
 * nothing meanwhile: every connection made then waits in the kernel's backlog and is reset at
 * the close, after the gateway has sent its request on it (a POST lost, answered 502).  A
 * listening socket shut down for reading refuses connection attempts at once instead, and a
 * refused attempt is one the gateway may pass to another replica: nothing was sent.  civetweb
 * gives no handle on its socket; it is the process's listening socket bound to the port.
 *
 * What this does not cover:
 * - Connections already queued (handshake done, not yet accepted) are reset by the shutdown
 *   (Linux disconnects a listening socket shut down for reading), with any request sent on
 *   them.  The window is the acceptor's poll: connections made since its last accept.  It is
 *   acceptable because the gateway stops choosing a leaving replica before it is told to stop
 *   (Kubernetes removes the pod from the Service's endpoints, scripts/nginx.sh reload does it
 *   locally: docs/operations.md#scale-out), and the drain delay (DRAIN_DELAY_MS) comes first:
 *   by now no new connection is expected.
 * - Connections the acceptor took just before are handed to a worker thread, which may not have
 *   taken them yet: once the stop is set civetweb drops them unanswered.  The 50 ms below is a
 *   heuristic for those; civetweb 1.15 tells the number of queued sockets only when built with
 *   USE_SERVER_STATS (mg_get_context_info), which the distribution's library is not. */
static void http_stop_listening(const struct http_server *s)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		log_warn("http: /proc/self/fd could not be read (%s): new connections are accepted "
		         "until civetweb stops",
		         strerror(errno));
		return;
	}
	int shut = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		errno = 0;
		long fd = strtol(e->d_name, &end, 10);
		int listening = 0;
		socklen_t len = sizeof listening;
		/* "." and "..", and the directory's own descriptor. */
		if (end == e->d_name || *end || errno || fd < 0 || fd > INT_MAX || fd == dirfd(d) ||
		    getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
		    !listening || http_socket_port((int)fd) != s->opts->port)
			continue;
		if (shutdown((int)fd, SHUT_RD) != 0)
			log_warn("http: the listening socket could not be shut down: %s",
			         strerror(errno));
		else
			shut++;
	}
	closedir(d);
	if (shut)
		log_info("http: %d listening socket(s) on port %lld shut down: new connections are "
		         "refused",
		         shut, s->opts->port);
	else
		log_warn(
			"http: no listening socket on port %lld found: new connections are accepted "
			"until civetweb stops",
			s->opts->port);
	timefmt_sleep_ms(50);
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->draining)
		http_stop_listening(s);
	mg_stop(s->ctx);
	mg_exit_library();
	http_thread_owner = NULL;
	free(s);
}
