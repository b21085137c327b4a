/* resolve.c - see resolve.h. */
#include "resolve.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int resolve_host(uv_loop_t *loop, const char *host, uint16_t port, struct sockaddr_storage *out,
                 int max)
{
    uv_getaddrinfo_t req;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(loop, &req, NULL, host, service, &hints);
    if (rc != 0) return rc;
    int n = resolve_copy(req.addrinfo, out, max);
    uv_freeaddrinfo(req.addrinfo);
    return n > 0 ? n : UV_EAI_NONAME;
}

int resolve_copy(const struct addrinfo *res, struct sockaddr_storage *out, int max)
{
    int n = 0;
    for (const struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        memset(&out[n], 0, sizeof out[n]);
        memcpy(&out[n++], ai->ai_addr, ai->ai_addrlen);
    }
    return n;
}

int resolve_split(const char *hp, char *host, size_t cap, uint16_t *port, uint16_t default_port)
{
    const char *colon;
    const char *h = hp;
    size_t hlen;
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (end == NULL) return -1;
        h = hp + 1;
        hlen = (size_t)(end - h);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL) return -1;
    } else {
        colon = strrchr(hp, ':');
        if (colon != NULL && strchr(hp, ':') != colon) { /* a bare IPv6 address, or nonsense */
            struct in6_addr a6;
            if (inet_pton(AF_INET6, hp, &a6) != 1) return -1;
            colon = NULL;
        }
        hlen = colon ? (size_t)(colon - hp) : strlen(hp);
    }
    if (hlen == 0 || hlen >= cap) return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (colon == NULL) {
        if (default_port == 0) return -1;
        *port = default_port;
        return 0;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535 || colon[1] == '\0') return -1;
    *port = (uint16_t)p;
    return 0;
}

void resolve_join(const char *host, uint16_t port, char *buf, size_t cap)
{
    if (strchr(host, ':') != NULL)
        snprintf(buf, cap, "[%s]:%u", host, port);
    else
        snprintf(buf, cap, "%s:%u", host, port);
}
