/* Unit tests of common/src/oidc.c: PKCE, URL policy, discovery and the code exchange against a
 * small in-process HTTP server on 127.0.0.1 (no outside network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "countof.h"
#include "jws_sign.h"
#include "log.h"
#include "oidc.h"

/* ---- a tiny loopback HTTP server ---- */

static struct {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	int discovery_hits, jwks_hits, token_hits;
	char token_form[4096]; /* last body POSTed to /ok/token */
	int token_status;      /* answer of /ok/token */
	char *token_body;      /* owned */
	char *jwks_body;       /* owned */
	int discovery_status;  /* 0: /ok's discovery answers normally, else this status */
	int jwks_status;       /* 0: /ok/jwks answers jwks_body, else this status */
} srv = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static char *base_url(const char *path)
{
	char *u = malloc(256);
	assert_non_null(u);
	snprintf(u, 256, "http://127.0.0.1:%d%s", srv.port, path);
	return u;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return; /* the client gave up (e.g. the response cap): fine */
		data += n;
		len -= (size_t)n;
	}
}

static void reply(int fd, int status, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
	                 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n",
	                 status, ctype, len);
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

/* A body without Content-Length, ended by closing the connection. */
static void reply_unsized(int fd, const char *body, size_t len)
{
	char head[128];
	int n = snprintf(head, sizeof head,
	                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                 "Connection: close\r\n\r\n");
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void serve_one(int fd)
{
	char req[16384];
	size_t got = 0;
	char *body = NULL;
	while (got < sizeof req - 1) {
		ssize_t n = recv(fd, req + got, sizeof req - 1 - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		req[got] = '\0';
		char *hend = strstr(req, "\r\n\r\n");
		if (!hend)
			continue;
		body = hend + 4;
		const char *cl = strcasestr(req, "\r\nContent-Length:");
		size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
		if ((size_t)(req + got - body) >= want)
			break;
	}
	if (!body)
		return;
	char method[16], path[512];
	if (sscanf(req, "%15s %511s", method, path) != 2)
		return;

	char *iss = base_url("/ok"), *tok = base_url("/ok/token"), *jw = base_url("/ok/jwks");
	char doc[1024];
	snprintf(doc, sizeof doc,
	         "{\"issuer\":\"%s\",\"authorization_endpoint\":"
	         "\"https://idp.example/auth?prompt=select_account\","
	         "\"token_endpoint\":\"%s\",\"jwks_uri\":\"%s\"}",
	         iss, tok, jw);
	free(iss);
	free(tok);
	free(jw);

	pthread_mutex_lock(&srv.lock);
	if (strcmp(path, "/ok/.well-known/openid-configuration") == 0) {
		srv.discovery_hits++;
		if (srv.discovery_status)
			reply(fd, srv.discovery_status, "application/json", "{}", 2);
		else
			reply(fd, 200, "application/json", doc, strlen(doc));
	} else if (strcmp(path, "/ok/jwks") == 0) {
		srv.jwks_hits++;
		const char *b = srv.jwks_body ? srv.jwks_body : "{\"keys\":[]}";
		if (srv.jwks_status)
			reply(fd, srv.jwks_status, "application/json", "{}", 2);
		else
			reply(fd, 200, "application/json", b, strlen(b));
	} else if (strcmp(path, "/ok/token") == 0 && strcmp(method, "POST") == 0) {
		srv.token_hits++;
		snprintf(srv.token_form, sizeof srv.token_form, "%s", body);
		const char *b = srv.token_body ? srv.token_body : "{}";
		reply(fd, srv.token_status, "application/json", b, strlen(b));
	} else if (strcmp(path, "/500/.well-known/openid-configuration") == 0) {
		reply(fd, 500, "application/json", "{}", 2);
	} else if (strcmp(path, "/404/.well-known/openid-configuration") == 0) {
		reply(fd, 404, "application/json", doc, strlen(doc));
	} else if (strcmp(path, "/html/.well-known/openid-configuration") == 0) {
		reply(fd, 200, "text/html", "<html></html>", 13);
	} else if (strcmp(path, "/array/.well-known/openid-configuration") == 0) {
		reply(fd, 200, "application/json", "[1,2]", 5);
	} else if (strcmp(path, "/partial/.well-known/openid-configuration") == 0) {
		const char *b = "{\"issuer\":\"x\",\"authorization_endpoint\":\"https://a\"}";
		reply(fd, 200, "application/json", b, strlen(b));
	} else if (strcmp(path, "/huge/.well-known/openid-configuration") == 0 ||
	           strcmp(path, "/huge-unsized/.well-known/openid-configuration") == 0) {
		/* A usable document, padded with whitespace past the cap. */
		size_t dl = strlen(doc), n = OIDC_MAX_RESPONSE + 4096;
		char *b = malloc(n);
		if (b) {
			memset(b, ' ', n);
			memcpy(b + n - dl, doc, dl);
			if (path[5] == '/')
				reply(fd, 200, "application/json", b, n);
			else
				reply_unsized(fd, b, n);
			free(b);
		}
	} else if (strcmp(path, "/redirect/.well-known/openid-configuration") == 0) {
		const char *h =
			"HTTP/1.1 302 Found\r\nLocation: /ok/.well-known/openid-configuration"
			"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		send_all(fd, h, strlen(h));
	} else {
		reply(fd, 404, "application/json", "{}", 2);
	}
	pthread_mutex_unlock(&srv.lock);
}

static void *server_main(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			return NULL;
		serve_one(c);
		close(c);
	}
}

static int server_start(void **state)
{
	(void)state;
	srv.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv.fd < 0)
		return -1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof a;
	if (bind(srv.fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv.fd, 16) != 0 ||
	    getsockname(srv.fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	srv.port = ntohs(a.sin_port);
	return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int server_stop(void **state)
{
	(void)state;
	shutdown(srv.fd, SHUT_RDWR);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	free(srv.token_body);
	free(srv.jwks_body);
	return 0;
}

/* ---- tests without a server ---- */

static void test_pkce_rfc7636(void **state)
{
	(void)state;
	char out[OIDC_PKCE_CHALLENGE_LEN];
	memset(out, 'x', sizeof out);
	oidc_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out);
	assert_string_equal(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	assert_int_equal(strlen(out), 43);
	/* SHA-256 of "" is e3b0c442…b855. */
	oidc_pkce_challenge("", out);
	assert_string_equal(out, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
}

static void test_new_free(void **state)
{
	(void)state;
	struct oidc_config cfg = {"https://accounts.google.com/.well-known/openid-configuration",
	                          "client",
	                          "secret",
	                          "https://app.example/cb",
	                          "",
	                          false,
	                          1000,
	                          0,
	                          0};
	struct oidc_client *c = oidc_new(&cfg);
	assert_non_null(c);
	oidc_free(c);
	oidc_free(NULL);
	for (int st = OIDC_OK; st <= OIDC_NOT_ALLOWED; st++)
		assert_true(strlen(oidc_status_str((enum oidc_status)st)) > 0);
	struct oidc_identity id = {NULL, NULL, NULL, NULL, NULL};
	oidc_identity_free(&id);
}

static enum oidc_status auth_url_for(const char *discovery, bool allow_loopback)
{
	struct oidc_config cfg = {discovery, "client",       "secret", "https://app.example/cb",
	                          NULL,      allow_loopback, 2000,     0,
	                          0};
	struct oidc_client *c = oidc_new(&cfg);
	assert_non_null(c);
	char *url = (char *)&url;
	enum oidc_status st = oidc_authorization_url(c, "st", "no", "verifier", NULL, &url);
	if (st != OIDC_OK)
		assert_null(url);
	free(st == OIDC_OK ? url : NULL);
	/* oidc_check and oidc_exchange agree with it. */
	assert_int_equal(oidc_check(c), st);
	struct oidc_identity id;
	memset(&id, 0x5a, sizeof id);
	enum oidc_status ex = oidc_exchange(c, "code", "verifier", "no", &id);
	if (st != OIDC_OK) {
		assert_int_equal(ex, st);
		assert_null(id.sub);
		assert_null(id.email);
	}
	oidc_identity_free(&id);
	oidc_free(c);
	return st;
}

/* oidc_check (/health, on a thread a stopping service joins) gives up after
 * OIDC_CHECK_TIMEOUT_MS even when the provider calls may take longer: here a provider that
 * accepts the connection (the kernel does, into the backlog) and never answers. */
static void test_check_bounded(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/.well-known/openid-configuration",
	         ntohs(a.sin_port));
	struct oidc_config cfg = {url,   "client", "secret", "https://app.example/cb", "", true,
	                          10000, 0,        0};
	struct oidc_client *c = oidc_new(&cfg);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(oidc_check(c), OIDC_UNREACHABLE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ms < OIDC_CHECK_TIMEOUT_MS - 100 || ms > OIDC_CHECK_TIMEOUT_MS + 3000)
		fail_msg("oidc_check took %ld ms", ms);
	oidc_free(c);
	close(fd);
}

static void test_unreachable_and_policy(void **state)
{
	(void)state;
	/* Port 1 on loopback: nobody listens. */
	assert_int_equal(auth_url_for("http://127.0.0.1:1/.well-known/openid-configuration", true),
	                 OIDC_UNREACHABLE);
	assert_int_equal(auth_url_for("http://localhost:1/.well-known/openid-configuration", true),
	                 OIDC_UNREACHABLE);
	assert_int_equal(auth_url_for("HTTP://127.0.0.1:1/x", true), OIDC_UNREACHABLE);
	/* https is always allowed (and fails to connect here). */
	assert_int_equal(auth_url_for("https://127.0.0.1:1/x", false), OIDC_UNREACHABLE);

	/* http to loopback without the explicit permission. */
	assert_int_equal(auth_url_for("http://127.0.0.1:1/.well-known/openid-configuration", false),
	                 OIDC_NOT_ALLOWED);
	assert_int_equal(auth_url_for("http://localhost:1/x", false), OIDC_NOT_ALLOWED);
	/* http to anything but loopback, even when loopback is allowed. */
	const char *refused[] = {
		"http://accounts.example.com/.well-known/openid-configuration",
		"http://127.0.0.1.nip.io/x",
		"http://localhost.example.com/x",
		"http://localhostx:1/x",
		"http://10.0.0.1/x",
		"ftp://127.0.0.1:1/x",
		"file:///etc/passwd",
		"gopher://127.0.0.1:1/",
		"127.0.0.1:1/x",
		"http://127.0.0.1:1@evil.example/x",
		"http://localhost@evil.example:1/x",
		"",
	};
	for (size_t i = 0; i < countof(refused); i++) {
		enum oidc_status st = auth_url_for(refused[i], true);
		if (st != OIDC_NOT_ALLOWED)
			fail_msg("\"%s\" gave %s", refused[i], oidc_status_str(st));
	}
}

/* ---- tests against the loopback server ---- */

static const char *query_value(const char *url, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);
	for (const char *p = strchr(url, '?'); p; p = strchr(p + 1, '&')) {
		if (strncmp(p + 1, name, n) == 0 && p[1 + n] == '=') {
			const char *v = p + 2 + n, *e = strchr(v, '&');
			size_t len = e ? (size_t)(e - v) : strlen(v);
			if (len >= size)
				return NULL;
			memcpy(buf, v, len);
			buf[len] = '\0';
			return buf;
		}
	}
	return NULL;
}

static void test_authorization_url(void **state)
{
	(void)state;
	char *disc = base_url("/ok/.well-known/openid-configuration");
	struct oidc_config cfg = {disc,
	                          "client id&1",
	                          "secret",
	                          "https://app.example/auth/callback",
	                          "example.com",
	                          true,
	                          2000,
	                          0,
	                          0};
	struct oidc_client *c = oidc_new(&cfg);
	int hits = srv.discovery_hits;
	char *url = NULL;
	assert_int_equal(oidc_authorization_url(c, "state-123", "nonce-456",
	                                        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	                                        "a+b@example.com", &url),
	                 OIDC_OK);
	assert_non_null(url);
	/* The endpoint's own query is kept and ours appended with '&'. */
	static const char endpoint[] = "https://idp.example/auth?prompt=select_account&";
	assert_true(strncmp(url, endpoint, strlen(endpoint)) == 0);
	char v[256];
	assert_string_equal(query_value(url, "response_type", v, sizeof v), "code");
	assert_string_equal(query_value(url, "client_id", v, sizeof v), "client%20id%261");
	assert_string_equal(query_value(url, "redirect_uri", v, sizeof v),
	                    "https%3A%2F%2Fapp.example%2Fauth%2Fcallback");
	assert_string_equal(query_value(url, "scope", v, sizeof v), "openid%20email%20profile");
	assert_string_equal(query_value(url, "state", v, sizeof v), "state-123");
	assert_string_equal(query_value(url, "nonce", v, sizeof v), "nonce-456");
	assert_string_equal(query_value(url, "code_challenge", v, sizeof v),
	                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	assert_string_equal(query_value(url, "code_challenge_method", v, sizeof v), "S256");
	assert_string_equal(query_value(url, "hd", v, sizeof v), "example.com");
	assert_string_equal(query_value(url, "login_hint", v, sizeof v), "a%2Bb%40example.com");
	/* The verifier itself never appears. */
	assert_null(strstr(url, "dBjftJeZ4CVP"));
	free(url);

	/* The discovery document is cached. */
	assert_int_equal(oidc_authorization_url(c, "s", "n", "v", NULL, &url), OIDC_OK);
	assert_null(query_value(url, "login_hint", v, sizeof v));
	free(url);
	assert_int_equal(oidc_check(c), OIDC_OK);
	assert_int_equal(srv.discovery_hits, hits + 1);
	oidc_free(c);
	free(disc);
}

static void test_bad_discovery(void **state)
{
	(void)state;
	const struct {
		const char *path;
		enum oidc_status want;
	} cases[] = {
		{"/500/.well-known/openid-configuration", OIDC_UNREACHABLE},
		{"/404/.well-known/openid-configuration", OIDC_BAD_RESPONSE},
		{"/html/.well-known/openid-configuration", OIDC_BAD_RESPONSE},
		{"/array/.well-known/openid-configuration", OIDC_BAD_RESPONSE},
		{"/partial/.well-known/openid-configuration", OIDC_BAD_RESPONSE},
		{"/huge-unsized/.well-known/openid-configuration", OIDC_BAD_RESPONSE},
		/* Redirects are not followed. */
		{"/redirect/.well-known/openid-configuration", OIDC_BAD_RESPONSE},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		char *u = base_url(cases[i].path);
		enum oidc_status st = auth_url_for(u, true);
		if (st != cases[i].want)
			fail_msg("%s gave %s", cases[i].path, oidc_status_str(st));
		free(u);
	}
	/* A declared Content-Length over the cap is refused before reading (502 either way). */
	char *u = base_url("/huge/.well-known/openid-configuration");
	enum oidc_status st = auth_url_for(u, true);
	assert_true(st == OIDC_BAD_RESPONSE || st == OIDC_UNREACHABLE);
	free(u);
}

/* RSA keys of our own as the provider's signing keys: idp_key is published as "k1" by
 * idp_setup, idp_key2 is the key a rotation brings in. */
static EVP_PKEY *idp_key, *idp_key2;

/* An id_token for claims (stolen) signed by key under kid.  Heap string. */
static char *id_token_with(EVP_PKEY *key, const char *kid, json_t *claims)
{
	char header[64];
	snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
	char *pj = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	assert_non_null(pj);
	char *t = jws_sign_rs256(key, header, pj);
	free(pj);
	return t;
}

static char *id_token(const char *kid, json_t *claims)
{
	return id_token_with(idp_key, kid, claims);
}

static json_t *good_claims(void)
{
	char *iss = base_url("/ok");
	long long now = (long long)time(NULL);
	json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:b, s:s, s:s}", "iss", iss,
	                      "aud", "client-1", "iat", (json_int_t)now, "exp",
	                      (json_int_t)(now + 300), "nonce", "n-123", "sub", "google-7", "email",
	                      "ada@example.com", "email_verified", 1, "hd", "example.com", "name",
	                      "Ada");
	free(iss);
	assert_non_null(c);
	return c;
}

/* Makes /ok/token answer status with {"id_token": token} (token stolen, may be NULL). */
static void set_token_answer(int status, char *token)
{
	pthread_mutex_lock(&srv.lock);
	free(srv.token_body);
	srv.token_status = status;
	if (token) {
		json_t *b = json_pack("{s:s, s:s}", "id_token", token, "token_type", "Bearer");
		srv.token_body = json_dumps(b, 0);
		json_decref(b);
		free(token);
	} else {
		srv.token_body = strdup("{\"error\":\"invalid_grant\"}");
	}
	pthread_mutex_unlock(&srv.lock);
}

static enum oidc_status exchange(const char *hosted_domain, struct oidc_identity *id)
{
	char *disc = base_url("/ok/.well-known/openid-configuration");
	struct oidc_config cfg = {
		disc, "client-1", "s3cret", "https://app.example/cb", hosted_domain, true,
		2000, 0,          0};
	struct oidc_client *c = oidc_new(&cfg);
	enum oidc_status st = oidc_exchange(c, "the/code", "the-verifier", "n-123", id);
	oidc_free(c);
	free(disc);
	if (st != OIDC_OK) {
		assert_null(id->sub);
		assert_null(id->email);
	}
	return st;
}

/* Makes /ok/jwks publish key alone under kid. */
static void publish_key(const EVP_PKEY *key, const char *kid)
{
	char *n = jws_key_param_b64(key, OSSL_PKEY_PARAM_RSA_N);
	char *e = jws_key_param_b64(key, OSSL_PKEY_PARAM_RSA_E);
	json_t *jwks = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "RSA",
	                         "kid", kid, "use", "sig", "alg", "RS256", "n", n, "e", e);
	pthread_mutex_lock(&srv.lock);
	free(srv.jwks_body);
	srv.jwks_body = json_dumps(jwks, 0);
	pthread_mutex_unlock(&srv.lock);
	json_decref(jwks);
	free(n);
	free(e);
}

static int idp_setup(void **state)
{
	(void)state;
	idp_key = EVP_RSA_gen(2048);
	idp_key2 = EVP_RSA_gen(2048);
	if (!idp_key || !idp_key2)
		return -1;
	publish_key(idp_key, "k1");
	pthread_mutex_lock(&srv.lock);
	srv.discovery_status = srv.jwks_status = 0;
	pthread_mutex_unlock(&srv.lock);
	return 0;
}

static int idp_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(idp_key);
	EVP_PKEY_free(idp_key2);
	return 0;
}

static void test_exchange_ok(void **state)
{
	(void)state;
	set_token_answer(200, id_token("k1", good_claims()));
	struct oidc_identity id;
	assert_int_equal(exchange("example.com", &id), OIDC_OK);
	assert_string_equal(id.sub, "google-7");
	assert_string_equal(id.email, "ada@example.com");
	assert_string_equal(id.name, "Ada");
	assert_string_equal(id.hd, "example.com");
	assert_null(id.picture);
	oidc_identity_free(&id);
	assert_null(id.sub);

	/* The form carried the code, the verifier and the client credentials, URL-encoded. */
	pthread_mutex_lock(&srv.lock);
	char form[4096];
	snprintf(form, sizeof form, "%s", srv.token_form);
	pthread_mutex_unlock(&srv.lock);
	assert_non_null(strstr(form, "grant_type=authorization_code"));
	assert_non_null(strstr(form, "code=the%2Fcode"));
	assert_non_null(strstr(form, "code_verifier=the-verifier"));
	assert_non_null(strstr(form, "client_id=client-1"));
	assert_non_null(strstr(form, "client_secret=s3cret"));
	assert_non_null(strstr(form, "redirect_uri=https%3A%2F%2Fapp.example%2Fcb"));

	/* No hosted domain configured: any hd (or none) is fine. */
	json_t *c = good_claims();
	json_object_del(c, "hd");
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange("", &id), OIDC_OK);
	assert_null(id.hd);
	oidc_identity_free(&id);
}

static void test_exchange_refusals(void **state)
{
	(void)state;
	struct oidc_identity id;

	set_token_answer(400, NULL);
	assert_int_equal(exchange(NULL, &id), OIDC_REJECTED);

	json_t *c = good_claims();
	json_object_set_new(c, "nonce", json_string("n-999"));
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	c = good_claims();
	json_object_del(c, "nonce");
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	c = good_claims();
	json_object_set_new(c, "aud", json_string("someone-else"));
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	c = good_claims();
	json_object_set_new(c, "iss", json_string("https://evil.example"));
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	c = good_claims();
	json_object_set_new(c, "exp", json_integer((json_int_t)time(NULL) - 3600));
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	c = good_claims();
	json_object_set_new(c, "email_verified", json_false());
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_EMAIL_UNVERIFIED);

	c = good_claims();
	json_object_del(c, "email_verified");
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange(NULL, &id), OIDC_EMAIL_UNVERIFIED);

	c = good_claims();
	json_object_set_new(c, "hd", json_string("evil.example"));
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange("example.com", &id), OIDC_WRONG_DOMAIN);

	c = good_claims();
	json_object_del(c, "hd");
	set_token_answer(200, id_token("k1", c));
	assert_int_equal(exchange("example.com", &id), OIDC_WRONG_DOMAIN);

	/* Signed by a key the provider does not publish. */
	set_token_answer(200, id_token("k-unknown", good_claims()));
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	/* A tampered token. */
	char *t = id_token("k1", good_claims());
	char *p = strchr(t, '.') + 4;
	*p = *p == 'A' ? 'B' : 'A';
	set_token_answer(200, t);
	assert_int_equal(exchange(NULL, &id), OIDC_INVALID_TOKEN);

	/* A 200 without an id_token. */
	pthread_mutex_lock(&srv.lock);
	free(srv.token_body);
	srv.token_body = strdup("{\"access_token\":\"x\"}");
	srv.token_status = 200;
	pthread_mutex_unlock(&srv.lock);
	assert_int_equal(exchange(NULL, &id), OIDC_BAD_RESPONSE);
}

/* Issue 11 item 5: azp, when present, must be our client id; with several audiences it must
 * be present. */
static void test_exchange_azp(void **state)
{
	(void)state;
	struct oidc_identity id;
	const struct {
		const char *aud_json,
			*azp_json; /* NULL: claim left as good_claims() has it / absent */
		enum oidc_status want;
	} cases[] = {
		{NULL, "\"client-1\"", OIDC_OK},
		{NULL, "\"client-2\"", OIDC_INVALID_TOKEN}, /* issued to another client */
		{NULL, "\"\"", OIDC_INVALID_TOKEN},
		{NULL, "\"Client-1\"", OIDC_INVALID_TOKEN},
		{NULL, "1", OIDC_INVALID_TOKEN},
		{NULL, "null", OIDC_INVALID_TOKEN},
		{NULL, "[\"client-1\"]", OIDC_INVALID_TOKEN},
		{"[\"client-2\",\"client-1\"]", "\"client-2\"", OIDC_INVALID_TOKEN},
		{"[\"client-2\",\"client-1\"]", NULL, OIDC_INVALID_TOKEN}, /* several, no azp */
		{"[\"client-2\",\"client-1\"]", "\"client-1\"", OIDC_OK},
		{"[\"client-1\"]", NULL, OIDC_OK},
		{NULL, NULL, OIDC_OK},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *c = good_claims();
		if (cases[i].aud_json)
			json_object_set_new(c, "aud",
			                    json_loads(cases[i].aud_json, JSON_DECODE_ANY, NULL));
		if (cases[i].azp_json)
			json_object_set_new(c, "azp",
			                    json_loads(cases[i].azp_json, JSON_DECODE_ANY, NULL));
		set_token_answer(200, id_token("k1", c));
		enum oidc_status st = exchange(NULL, &id);
		if (st != cases[i].want)
			fail_msg("case %zu (aud %s, azp %s): %s", i, cases[i].aud_json,
			         cases[i].azp_json, oidc_status_str(st));
		oidc_identity_free(&id);
	}
}

/* Sleeps past a one-second refresh interval (time() has a one-second resolution). */
static void wait_past_refresh(void)
{
	struct timespec ts = {1, 150 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

/* Sign-in on a client kept across calls (exchange() makes a fresh one each time). */
static enum oidc_status exchange_on(struct oidc_client *c, char *token)
{
	struct oidc_identity id;
	set_token_answer(200, token);
	enum oidc_status st = oidc_exchange(c, "the/code", "the-verifier", "n-123", &id);
	if (st != OIDC_OK)
		assert_null(id.sub);
	oidc_identity_free(&id);
	return st;
}

static int hits(const int *counter)
{
	pthread_mutex_lock(&srv.lock);
	int n = *counter;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

/* Issue 11 item 5: the JWKS is fetched again on a schedule, not only for an unknown kid, so a
 * key the provider withdrew stops being trusted. */
static void test_jwks_refreshed_on_schedule(void **state)
{
	(void)state;
	char *disc = base_url("/ok/.well-known/openid-configuration");
	struct oidc_config cfg = {disc, "client-1", "s3cret", "https://app.example/cb", NULL, true,
	                          2000, 1,          0};
	struct oidc_config hourly_cfg = cfg;
	hourly_cfg.jwks_refresh_s = 0; /* the default: an hour */
	struct oidc_client *c = oidc_new(&cfg), *hourly = oidc_new(&hourly_cfg);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	assert_int_equal(exchange_on(hourly, id_token("k1", good_claims())), OIDC_OK);

	/* The provider withdraws k1 and publishes k2; someone still holds k1. */
	publish_key(idp_key2, "k2");
	int before = hits(&srv.jwks_hits);
	/* Until its next refresh a client trusts the keys it has (here: the hourly one). */
	assert_int_equal(exchange_on(hourly, id_token("k1", good_claims())), OIDC_OK);
	assert_int_equal(hits(&srv.jwks_hits), before);

	wait_past_refresh();
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_INVALID_TOKEN);
	assert_true(hits(&srv.jwks_hits) > before);
	/* The new key is trusted. */
	assert_int_equal(exchange_on(c, id_token_with(idp_key2, "k2", good_claims())), OIDC_OK);
	oidc_free(c);
	oidc_free(hourly);
	free(disc);
}

/* A scheduled JWKS refresh that fails keeps the cached keys in use. */
static void test_jwks_refresh_failure_keeps_keys(void **state)
{
	(void)state;
	char *disc = base_url("/ok/.well-known/openid-configuration");
	struct oidc_config cfg = {disc, "client-1", "s3cret", "https://app.example/cb", NULL, true,
	                          2000, 1,          0};
	struct oidc_client *c = oidc_new(&cfg);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	pthread_mutex_lock(&srv.lock);
	srv.jwks_status = 503;
	pthread_mutex_unlock(&srv.lock);
	wait_past_refresh();
	int before = hits(&srv.jwks_hits);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	assert_true(hits(&srv.jwks_hits) > before); /* it did try */
	pthread_mutex_lock(&srv.lock);
	srv.jwks_status = 0;
	pthread_mutex_unlock(&srv.lock);
	oidc_free(c);
	free(disc);
}

/* ... but not for ever: keys that could not be refreshed for jwks_max_age_s are no longer
 * trusted (a key the provider withdrew during an outage of its JWKS endpoint must not stay
 * valid); sign-in fails closed until a fetch succeeds again. */
static void test_jwks_too_old_is_dropped(void **state)
{
	(void)state;
	char *disc = base_url("/ok/.well-known/openid-configuration");
	struct oidc_config cfg = {disc, "client-1", "s3cret", "https://app.example/cb", NULL, true,
	                          2000, 1,          3};
	struct oidc_client *c = oidc_new(&cfg);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	time_t fetched = time(NULL);
	pthread_mutex_lock(&srv.lock);
	srv.jwks_status = 503;
	pthread_mutex_unlock(&srv.lock);
	wait_past_refresh();
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK); /* kept */
	while (time(NULL) - fetched < 4)
		wait_past_refresh();
	int before = hits(&srv.jwks_hits);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_UNREACHABLE);
	assert_true(hits(&srv.jwks_hits) > before); /* it tried once more first */
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_UNREACHABLE);

	pthread_mutex_lock(&srv.lock);
	srv.jwks_status = 0;
	pthread_mutex_unlock(&srv.lock);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	oidc_free(c);

	/* The default limit: a day, or two refresh intervals when they are longer. */
	cfg.jwks_max_age_s = 0;
	cfg.jwks_refresh_s = 1;
	c = oidc_new(&cfg);
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	pthread_mutex_lock(&srv.lock);
	srv.jwks_status = 503;
	pthread_mutex_unlock(&srv.lock);
	wait_past_refresh();
	wait_past_refresh();
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	pthread_mutex_lock(&srv.lock);
	srv.jwks_status = 0;
	pthread_mutex_unlock(&srv.lock);
	oidc_free(c);
	free(disc);
}

/* Issue 11 item 5: a failed refresh of the discovery document keeps the cached one in use (sign-in
 * goes on); oidc_check (/health) reports the failure until a refresh succeeds again. */
static void test_discovery_refresh_failure_keeps_document(void **state)
{
	(void)state;
	char *disc = base_url("/ok/.well-known/openid-configuration");
	struct oidc_config cfg = {disc, "client-1", "s3cret", "https://app.example/cb", NULL, true,
	                          2000, 1,          0};
	struct oidc_client *c = oidc_new(&cfg);
	assert_int_equal(oidc_check(c), OIDC_OK);
	pthread_mutex_lock(&srv.lock);
	srv.discovery_status = 503;
	pthread_mutex_unlock(&srv.lock);
	wait_past_refresh();
	int before = hits(&srv.discovery_hits);
	char *url = NULL;
	assert_int_equal(oidc_authorization_url(c, "s", "n", "v", NULL, &url), OIDC_OK);
	assert_non_null(strstr(url, "https://idp.example/auth?"));
	free(url);
	assert_true(hits(&srv.discovery_hits) > before); /* it did try */
	assert_int_equal(exchange_on(c, id_token("k1", good_claims())), OIDC_OK);
	assert_int_equal(oidc_check(c), OIDC_UNREACHABLE);

	pthread_mutex_lock(&srv.lock);
	srv.discovery_status = 0;
	pthread_mutex_unlock(&srv.lock);
	wait_past_refresh();
	assert_int_equal(oidc_check(c), OIDC_OK);
	oidc_free(c);
	free(disc);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_init("test_oidc", LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkce_rfc7636),
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_unreachable_and_policy),
		cmocka_unit_test(test_check_bounded),
		cmocka_unit_test(test_authorization_url),
		cmocka_unit_test(test_bad_discovery),
		cmocka_unit_test_setup_teardown(test_exchange_ok, idp_setup, idp_teardown),
		cmocka_unit_test_setup_teardown(test_exchange_refusals, idp_setup, idp_teardown),
		cmocka_unit_test_setup_teardown(test_exchange_azp, idp_setup, idp_teardown),
		cmocka_unit_test_setup_teardown(test_jwks_refreshed_on_schedule, idp_setup,
	                                        idp_teardown),
		cmocka_unit_test_setup_teardown(test_jwks_refresh_failure_keeps_keys, idp_setup,
	                                        idp_teardown),
		cmocka_unit_test_setup_teardown(test_jwks_too_old_is_dropped, idp_setup,
	                                        idp_teardown),
		cmocka_unit_test_setup_teardown(test_discovery_refresh_failure_keeps_document,
	                                        idp_setup, idp_teardown),
	};
	int rc = cmocka_run_group_tests(tests, server_start, server_stop);
	curl_global_cleanup();
	return rc;
}
