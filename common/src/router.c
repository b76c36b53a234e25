#include "router.h"

#include <stdio.h>
#include <string.h>

/* Length of the path without trailing slashes (but "/" stays "/"). */
static size_t router_trim(const char *path, size_t len)
{
	while (len > 1 && path[len - 1] == '/')
		len--;
	return len;
}

/* Matches path[0..plen) against pattern; fills params on success. */
static bool router_match_one(const char *pattern, const char *path, size_t plen,
                             struct router_match *m)
{
	const char *pt = pattern, *pa = path, *end = path + plen;
	size_t np = 0;
	while (*pt && pa < end) {
		if (*pt == '{') {
			const char *close = strchr(pt, '}');
			if (!close)
				return false;
			const char *seg_end = memchr(pa, '/', (size_t)(end - pa));
			if (!seg_end)
				seg_end = end;
			if (seg_end == pa || np == ROUTER_MAX_PARAMS)
				return false;
			m->params[np].name = pt + 1;
			m->params[np].name_len = (size_t)(close - pt - 1);
			m->params[np].value = pa;
			m->params[np].value_len = (size_t)(seg_end - pa);
			np++;
			pt = close + 1;
			pa = seg_end;
			continue;
		}
		if (*pt != *pa)
			return false;
		pt++;
		pa++;
	}
	if (*pt || pa != end)
		return false;
	m->nparams = np;
	return true;
}

bool router_find(const void *routes, size_t n, size_t stride, const char *method, const char *path,
                 struct router_match *m)
{
	memset(m, 0, sizeof *m);
	m->index = -1;
	size_t plen = strnlen(path, ROUTER_MAX_PATH + 1);
	if (plen == 0 || plen > ROUTER_MAX_PATH || path[0] != '/')
		return false;
	plen = router_trim(path, plen);

	const char *base = routes;
	for (size_t i = 0; i < n; i++) {
		const struct router_route *r =
			(const struct router_route *)(const void *)(base + i * stride);
		struct router_match tmp;
		memset(&tmp, 0, sizeof tmp);
		if (!router_match_one(r->pattern, path, plen, &tmp))
			continue;
		if (!strstr(m->allow, r->method)) {
			size_t used = strlen(m->allow);
			snprintf(m->allow + used, sizeof m->allow - used, "%s%s", used ? ", " : "",
			         r->method);
		}
		if (strcmp(r->method, method) == 0 && m->index < 0) {
			m->index = (long)i;
			m->nparams = tmp.nparams;
			memcpy(m->params, tmp.params, sizeof tmp.params);
		} else {
			m->path_known = true;
		}
	}
	if (m->index >= 0)
		m->path_known = true;
	return m->index >= 0;
}

bool router_param(const struct router_match *m, const char *name, char *buf, size_t size)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; i < m->nparams; i++) {
		const struct router_param *p = &m->params[i];
		if (p->name_len == nlen && memcmp(p->name, name, nlen) == 0) {
			if (p->value_len >= size)
				return false;
			memcpy(buf, p->value, p->value_len);
			buf[p->value_len] = '\0';
			return true;
		}
	}
	return false;
}
