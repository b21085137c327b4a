/* resolve.h - blocking name resolution for start-up (libuv's getaddrinfo
 * without a callback), into a fixed array of addresses. */
#ifndef BORE_RESOLVE_H
#define BORE_RESOLVE_H

#include <stdint.h>
#include <netdb.h>
#include <sys/socket.h>
#include <uv.h>

/* Resolves host:port (TCP). Returns the number of addresses (1..max), or a
 * negative libuv error. */
int resolve_host(uv_loop_t *loop, const char *host, uint16_t port, struct sockaddr_storage *out,
                 int max);

/* Copies up to `max` addresses of a getaddrinfo answer; returns how many. */
int resolve_copy(const struct addrinfo *res, struct sockaddr_storage *out, int max);

/* Splits "host:port" (or "[v6]:port"; a bare IPv6 address is a host
 * alone); the host is copied into `host`. Returns 0 or
 * -1. `default_port` is used when no port is given (0: required). */
int resolve_split(const char *hostport, char *host, size_t cap, uint16_t *port, uint16_t default_port);

/* "host:port", with an IPv6 host in brackets, into buf (truncated to cap). */
void resolve_join(const char *host, uint16_t port, char *buf, size_t cap);

#endif
