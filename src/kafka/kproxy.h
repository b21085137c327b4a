/* kproxy.h - `bore kafka-proxy`: a whole Kafka cluster behind one command.
 *
 * At start the proxy asks the cluster for its brokers (its own ApiVersions
 * and Metadata request to --bootstrap-server), opens one tunnel per broker
 * plus one for the bootstrap address on the tunnel server - with the plain
 * bore protocol, so any bore server works - and prints the table of public
 * addresses. The bootstrap tunnel is opened first and the brokers' once it
 * listens, so a refused secret is one attempt, one message. Every connection that arrives through a tunnel is relayed to
 * its broker through the codec (kstream.h): each broker address in each
 * response becomes the advertised host and that broker's tunnel port. A
 * broker seen for the first time gets a tunnel before the response that
 * names it is released; a broker whose address changes is followed. */
#ifndef BORE_KPROXY_H
#define BORE_KPROXY_H

#include <stdint.h>

typedef struct {
    const char *bootstrap_host;  /* any broker */
    uint16_t bootstrap_port;
    const char *to_host;         /* tunnel server */
    uint16_t to_port;            /* its control port */
    const char *secret;          /* NULL: no authentication */
    const char *advertised_host; /* the host clients use to reach `to` */
    uint16_t port;               /* public port of the bootstrap tunnel, 0 = any */
    unsigned heartbeat_timeout_ms;
    uint32_t max_frame;
} kproxy_config_t;

/* Runs until SIGINT/SIGTERM (0), or a fatal error or the server closing a
 * tunnel (prints "Error: ...", returns 1). Warns at start-up when the cluster
 * is about to be public on an internet-facing server with no protection. */
int kproxy_run(const kproxy_config_t *cfg);

#endif
