/* net.h - every socket detail in one place: listeners bound synchronously
 * (so a port search can try many ports without waiting for close callbacks),
 * socket options, and printable peer addresses.
 *
 * Error convention: 0 or a negative libuv error code (UV_E*). */
#ifndef BORE_NET_H
#define BORE_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#define NET_ADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/* Parses a literal IPv4 or IPv6 address with a port into *out. */
int net_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *out);

/* 1 if the address is reachable from the internet at large: not loopback,
 * private (RFC 1918, RFC 6598, fc00::/7), link-local, documentation or
 * multicast. */
int net_is_public(const struct sockaddr_storage *sa);

/* A non-blocking, close-on-exec socket bound to ip:port and listening.
 * Returns the fd, or a negative error: the bind errors of a port search
 * (UV_EADDRINUSE, UV_EACCES) come from here, synchronously. */
int net_listen_fd(const char *ip, uint16_t port, int backlog);

/* A listener that accepts by hand (accept4 from a uv_poll_t) instead of
 * libuv's: when descriptors run out (EMFILE, ENFILE), libuv sheds the
 * pending connection without telling anyone; this one sheds it too - with a
 * reserve descriptor it frees for the moment, so the peer sees EOF instead
 * of waiting in the backlog -, counts it, and calls on_shed so the owner
 * can log it. */
typedef struct net_listener net_listener_t;

/* A connection: `fd` is non-blocking and close-on-exec, and now the
 * callee's. `status` < 0 for an accept error (fd is then -1). */
typedef void (*net_accept_cb)(net_listener_t *l, int fd, int status);

struct net_listener {
    uv_poll_t poll; /* first: the handle to uv_close; poll.data is the owner's */
    int fd;
    net_accept_cb on_accept;
    uint64_t shed; /* connections closed at once for want of a descriptor */
};

/* Starts accepting on a listening fd. On failure before the poll handle is
 * initialised the fd is closed (returns < 0, *initialised = 0); after it,
 * the caller must net_listener_close (*initialised = 1). */
int net_listener_start(uv_loop_t *loop, net_listener_t *l, int fd, net_accept_cb cb,
                       int *initialised);

/* Stops accepting, closes the fd, and uv_closes the poll handle. */
void net_listener_close(net_listener_t *l, uv_close_cb cb);

/* Adopts an accepted fd into an initialised `handle`. On failure the fd is
 * closed; the handle, if initialised (*initialised = 1), must be uv_closed. */
int net_adopt(uv_loop_t *loop, uv_tcp_t *handle, int fd, int *initialised);

/* TCP_NODELAY, and keepalive when `keepalive_secs` > 0. Failures are ignored:
 * these are optimisations on an already working socket. */
void net_tune(uv_tcp_t *handle, unsigned keepalive_secs);

/* A peer that vanished (power cut, NAT that forgot the flow) is noticed in
 * about `secs` seconds: keepalive probes from secs/4 of silence, and
 * TCP_USER_TIMEOUT for data left unacknowledged that long. */
void net_detect_dead_peer(uv_tcp_t *handle, unsigned secs);

/* The peer's "ip:port", or "?" if unknown. */
const char *net_peer(const uv_tcp_t *handle, char buf[NET_ADDR_STRLEN]);

/* The locally bound port of a listening fd, or 0. */
uint16_t net_local_port(int fd);

#endif
