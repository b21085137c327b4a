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
 * names it is released; a broker whose address changes is followed.
 *
 * Pre-flight (kcheck.h): every broker of the Metadata answer, and the
 * bootstrap address, is checked at once while the tunnels open; the table
 * gains a STATUS column and one line of advice per problem. Brokers learned
 * later are checked too, and the result logged. --map (kmap.h) decides
 * where a broker is dialled; log lines name its id, the address it
 * advertises and, when a map applies, the address dialled.
 *
 * With `auth` set, every connection passes the authentication gate
 * (kgate.h) before any of its bytes reaches a broker. */
#ifndef BORE_KPROXY_H
#define BORE_KPROXY_H

#include <stdint.h>

#include "kmap.h"

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
    const kmap_t *maps; /* --map: where to dial brokers (kmap.h) */
    int strict;         /* a broker that fails the pre-flight ends the start-up */
    int check_only;     /* --check: the pre-flight only, no server, no tunnels */
    const char *state_dir; /* --state-dir, or NULL for the default (state.h) */
    /* The authentication gate (kgate.h): clients authenticate with the proxy
     * before any byte of theirs reaches a broker. NULL: no gate. */
    const struct ksasl_store *auth;
    int auth_plain;            /* offer PLAIN (TLS, or --allow-plain-without-tls) */
    unsigned auth_deadline_ms; /* 0: the default */
    const char *metrics_ip; /* --metrics: serve /metrics etc. on metrics_ip:metrics_port, or NULL */
    uint16_t metrics_port;
    int tui;                /* the live terminal view (tui.h) once running */
    /* TLS on every public port (tls.h): the user's certificate and key, or
     * (both NULL) a leaf for advertised_host from the generated CA (tlsca.h). */
    int tls;
    const char *tls_cert, *tls_key;
    const char *tls_client_ca; /* mTLS: client certificates signed by this CA */
    unsigned tls_handshake_ms; /* a client must finish its handshake within this */
    /* --broker-tls: TLS towards the brokers (their listeners are SSL),
     * verified against broker_ca (NULL: the system's CAs) and each broker's
     * advertised host; an optional client certificate and key. */
    int broker_tls;
    const char *broker_ca, *broker_cert, *broker_key;
    int reconnect;               /* tunnel.h: every tunnel reconnects */
    unsigned reconnect_attempts; /* 0: forever */
    unsigned reclaim_ms;
} kproxy_config_t;

/* Runs until SIGINT/SIGTERM (0), or a fatal error at start, a tunnel giving
 * up reconnecting, or (reconnect off) the server closing a tunnel (prints
 * "Error: ...", returns 1). Tunnels reconnect on their old ports (tunnel.h);
 * the ports are remembered in the state directory (kports.h), and the
 * bootstrap tunnel dials any broker the proxy knows when its own is down. With check_only: 0 when every
 * address passed the pre-flight, 1 otherwise. Warns at start-up when the cluster
 * is about to be public on an internet-facing server with no protection. */
int kproxy_run(const kproxy_config_t *cfg);

#endif
