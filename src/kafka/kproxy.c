/* kproxy.c - see kproxy.h. */
#include "kproxy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcheck.h"
#include "kgate.h"
#include "kmetrics.h"
#include "kports.h"
#include "ksasl.h"
#include "kstream.h"
#include "kwire.h"
#include "metrics.h"
#include "list.h"
#include "log.h"
#include "net.h"
#include "relay.h"
#include "resolve.h"
#include "state.h"
#include "status.h"
#include "tls.h"
#include "tlsca.h"
#include "tunnel.h"
#include "tui.h"

#define LOG_TARGET "bore::kafka"
#define STARTUP_MS 10000
#define HOST_MAX 256
#define ADDR_MAX (HOST_MAX + 8)     /* "host:port" */
#define LABEL_MAX (3 * ADDR_MAX)    /* "Kafka broker N at A (dialled B)" */
#define NODES_MAX 1024 /* brokers (node ids) a cluster may name: each costs a tunnel */

typedef struct kproxy kproxy_t;

/* A broker (or the bootstrap address, id -1) and its tunnel. */
typedef struct node {
    kproxy_t *px;
    list_t link;
    int32_t id;
    char host[HOST_MAX]; /* internal address, as the cluster advertises it */
    int32_t port;
    const kmap_entry_t *map; /* the --map that applies, or NULL: dialled as advertised */
    kcheck_t *check;         /* the pre-flight in flight */
    int checked;             /* `status` holds the last verdict for this address */
    kcheck_status_t status;
    char detail[96];
    unsigned check_ms;
    tunnel_t *tunnel;
    uint16_t public_port; /* 0 until the tunnel listens */
    list_t waiters;       /* kconn_t.wait_link: responses waiting for public_port */
    uv_getaddrinfo_t gai;
    struct sockaddr_storage addrs[TUNNEL_MAX_TARGETS]; /* resolved, for the bootstrap's failover */
    int n_addrs;
    int opened;    /* the tunnel was opened (it may have ended since) */
    int resolving;
    int resolve_again; /* the address changed while resolving */
    int reconnecting;  /* its tunnel lost the control connection and is coming back */
    kmetrics_node_t m;
} node_t;

/* One proxied Kafka connection: a relay whose two directions run through
 * the codec. */
typedef struct kconn {
    kproxy_t *px;
    node_t *node; /* the tunnel it came through (nodes live until the end) */
    kstream_t ks;
    kgate_t *gate; /* until the client authenticates (NULL: no gate) */
    relay_t *relay;
    node_t *waiting_on;
    list_t wait_link;
    tls_conn_t *tls;       /* --tls: the client's side (relay side a) */
    relay_transport_t tp;
    tls_conn_t *btls;      /* --broker-tls: the broker's side (relay side b) */
    relay_transport_t btp;
    uv_timer_t deadline;   /* the TLS handshake must finish by then */
} kconn_t;

enum px_state { PX_METADATA, PX_TUNNELS, PX_RUNNING, PX_DONE };

struct kproxy {
    const kproxy_config_t *cfg;
    uv_loop_t *loop;
    enum px_state state;
    int exit_code;
    const char *bs_host;
    uint16_t bs_port;
    struct sockaddr_storage bs_addrs[TUNNEL_MAX_TARGETS]; /* tried in turn by the probe */
    int n_bs, bs_idx;
    char to[HOST_MAX + 8]; /* the server's "host:port", for messages */
    struct sockaddr_storage servers[TUNNEL_MAX_TARGETS];
    int n_servers;
    list_t nodes;
    unsigned n_nodes;
    list_t relays;
    /* start-up: our own ApiVersions + Metadata exchange with the cluster */
    uv_tcp_t probe;
    uv_connect_t probe_req;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    uint8_t *probe_buf;
    size_t probe_len;
    int probe_frames;
    int probe_open;
    int probe_sasl;   /* second probe: does the listener require SASL? */
    int sasl_cluster; /* yes: brokers are learned from clients' Metadata */
    kgate_api_t apis[KGATE_APIS_MAX]; /* the cluster's ApiVersions, for the gate */
    size_t n_apis;
    uint64_t n_conns;
    tui_t *tui;
    tls_ctx_t *tls;   /* --tls */
    tls_ctx_t *broker_tls; /* --broker-tls: brokers, the probe included */
    tls_conn_t *probe_tls;
    uint8_t *probe_cipher; /* the probe's reads, before decryption */
    char tls_ca[STATE_PATH_MAX]; /* the generated CA clients trust, or "" (own certificate) */
    /* the ports remembered in the state directory (kports.h) */
    kports_t *ports; /* NULL: no state directory */
    char state_dir[STATE_PATH_MAX];
    char ports_key[2 * ADDR_MAX + 2];
};

static void px_stop(kproxy_t *px, int code);

/* ---- nodes and their tunnels -------------------------------------------- */

static node_t *node_find(kproxy_t *px, int32_t id)
{
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *n = LIST_ENTRY(e, node_t, link);
        if (n->id == id) return n;
    }
    return NULL;
}

static const char *node_name(const node_t *n, char *buf, size_t cap)
{
    if (n->id < 0)
        snprintf(buf, cap, "bootstrap");
    else
        snprintf(buf, cap, "broker %d", n->id);
    return buf;
}

/* The host and port the proxy dials for this node. */
static const char *dial_host(const node_t *n) { return n->map ? n->map->to_host : n->host; }
static int32_t dial_port(const node_t *n) { return n->map ? n->map->to_port : n->port; }

static void advertised_addr(const node_t *n, char *buf, size_t cap)
{
    resolve_join(n->host, (uint16_t)n->port, buf, cap);
}

static void dialled_addr(const node_t *n, char *buf, size_t cap)
{
    resolve_join(dial_host(n), (uint16_t)dial_port(n), buf, cap);
}

/* How every log line names a node: its id, the address it advertises and,
 * when a --map applies, the address dialled ("Kafka broker 2 at
 * kafka-2:29092 (dialled 127.0.0.1:19092)"). */
static const char *node_label(const node_t *n, char *buf, size_t cap)
{
    char name[32], adv[ADDR_MAX], dial[ADDR_MAX];
    advertised_addr(n, adv, sizeof adv);
    if (n->map == NULL) {
        snprintf(buf, cap, "Kafka %s at %s", node_name(n, name, sizeof name), adv);
    } else {
        dialled_addr(n, dial, sizeof dial);
        snprintf(buf, cap, "Kafka %s at %s (dialled %s)", node_name(n, name, sizeof name), adv, dial);
    }
    return buf;
}

/* (Re)reads the --map that applies to the node's advertised address. */
static void node_map(node_t *n)
{
    n->map = kmap_find(n->px->cfg->maps, n->id, n->host, strlen(n->host), n->port);
}

/* The one line of advice about a failed check (r: NULL for the node's last). */
static void node_hint(const node_t *n, const kcheck_result_t *r, int running, char *buf, size_t cap)
{
    char who[32], adv[ADDR_MAX], dial[ADDR_MAX];
    if (n->id < 0)
        snprintf(who, sizeof who, "the bootstrap address");
    else
        node_name(n, who, sizeof who);
    advertised_addr(n, adv, sizeof adv);
    dialled_addr(n, dial, sizeof dial);
    kcheck_result_t last = {n->status, n->detail, n->check_ms};
    kcheck_hint(buf, cap, who, adv, n->map ? dial : NULL, running, r ? r : &last);
}

static void wake_waiters(node_t *n);
static void node_open(node_t *n);
static void node_check(node_t *n);
static void maybe_ready(kproxy_t *px);

/* Remembers every node's public port in the state directory, if changed. */
static void save_ports(kproxy_t *px)
{
    if (px->ports == NULL) return;
    int changed = 0;
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        if (m->public_port == 0 || kports_get(px->ports, m->id) == m->public_port) continue;
        kports_set(px->ports, m->id, m->public_port);
        changed = 1;
    }
    if (changed && kports_save(px->state_dir, px->ports_key, px->ports) == 0)
        log_debug("public ports remembered in %s/%s", px->state_dir, KPORTS_FILE);
}

/* bootstrap.servers=: the bootstrap address, then every broker's public
 * address, as Kafka users expect of a bootstrap list. */
static void print_bootstrap_servers(kproxy_t *px)
{
    node_t *bs = node_find(px, -1);
    printf("bootstrap.servers=%s:%u", px->cfg->advertised_host, bs ? bs->public_port : 0);
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        if (m->id >= 0 && m->public_port != 0)
            printf(",%s:%u", px->cfg->advertised_host, m->public_port);
    }
    printf("\n");
    fflush(stdout);
}

/* The bootstrap tunnel dials its own address first, then every broker the
 * proxy knows (each one's first address): any live broker answers
 * Metadata, so new clients still bootstrap when the given broker is down. */
static void bootstrap_targets(kproxy_t *px)
{
    node_t *bs = node_find(px, -1);
    if (bs == NULL || bs->tunnel == NULL || bs->n_addrs == 0) return;
    struct sockaddr_storage all[TUNNEL_MAX_TARGETS];
    int k = 0;
    for (int i = 0; i < bs->n_addrs && k < TUNNEL_MAX_TARGETS; i++) all[k++] = bs->addrs[i];
    for (list_t *e = px->nodes.next; e != &px->nodes && k < TUNNEL_MAX_TARGETS; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        if (m->id < 0 || m->n_addrs == 0) continue;
        int dup = 0;
        for (int i = 0; i < k && !dup; i++)
            dup = memcmp(&all[i], &m->addrs[0], sizeof all[i]) == 0;
        if (!dup) all[k++] = m->addrs[0];
    }
    char label[LABEL_MAX];
    tunnel_set_target(bs->tunnel, all, k, node_label(bs, label, sizeof label));
}

static void on_tunnel_listening(void *ctx, tunnel_t *t, uint16_t port)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    (void)t;
    uint16_t old = n->public_port;
    n->public_port = port;
    n->reconnecting = 0;
    kmetrics_node_port(&n->m, port);
    char who[32];
    status_event("%s is public on port %u",
                 n->id < 0 ? "the bootstrap address" : node_name(n, who, sizeof who), port);
    if (px->state == PX_RUNNING && old != 0) {
        char name[32];
        node_name(n, name, sizeof name);
        kmetrics_reconnect(&n->m);
        if (old == port) {
            log_info("%s restored on its public address %s:%u", name, px->cfg->advertised_host, port);
        } else if (n->id < 0) {
            log_error("THE BOOTSTRAP ADDRESS MOVED: %s:%u could not be had back; new clients must "
                      "use %s:%u (clients already connected follow the brokers' addresses)",
                      px->cfg->advertised_host, old, px->cfg->advertised_host, port);
            print_bootstrap_servers(px);
        } else {
            log_warn("%s moved to public port %u (was %u): clients learn it from their next "
                     "Metadata", name, port, old);
        }
        save_ports(px);
        wake_waiters(n);
        return;
    }
    if (px->state == PX_TUNNELS && n->id < 0) {
        /* The server took our secret: now the brokers' tunnels. */
        for (list_t *e = px->nodes.next; e != &px->nodes && px->state != PX_DONE; e = e->next) {
            node_t *m = LIST_ENTRY(e, node_t, link);
            if (!m->opened) node_open(m);
        }
        if (px->state == PX_DONE) return;
    }
    if (px->state == PX_RUNNING) {
        char name[32], adv[ADDR_MAX], dial[ADDR_MAX];
        advertised_addr(n, adv, sizeof adv);
        dialled_addr(n, dial, sizeof dial);
        log_info("%s is public at %s:%u (internal %s%s%s)", node_name(n, name, sizeof name),
                 px->cfg->advertised_host, port, adv, n->map ? ", dialled " : "", n->map ? dial : "");
        save_ports(px);
    }
    maybe_ready(px);
    if (px->state == PX_DONE) return;
    wake_waiters(n);
}

/* The table users copy their settings from: one row per node, with the
 * pre-flight's verdict, and one line of advice per problem. `public`: the
 * PUBLIC column (not with --check). Returns how many nodes failed. */
static int print_table(kproxy_t *px, int public)
{
    int w_int = (int)strlen("INTERNAL"), w_dial = (int)strlen("DIALLED"), mapped = 0, failed = 0;
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        char a[ADDR_MAX];
        advertised_addr(m, a, sizeof a);
        if ((int)strlen(a) > w_int) w_int = (int)strlen(a);
        dialled_addr(m, a, sizeof a);
        if ((int)strlen(a) > w_dial) w_dial = (int)strlen(a);
        mapped |= m->map != NULL;
    }
    printf("  %-10s ", "NODE");
    if (public) printf("%-32s ", "PUBLIC");
    printf("%-*s ", w_int, "INTERNAL");
    if (mapped) printf("%-*s ", w_dial, "DIALLED");
    printf("STATUS\n");
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        char id[16], pub[HOST_MAX + 8], adv[ADDR_MAX], dial[ADDR_MAX];
        snprintf(id, sizeof id, "%d", m->id);
        printf("  %-10s ", m->id < 0 ? "bootstrap" : id);
        if (public) {
            snprintf(pub, sizeof pub, "%s:%u", px->cfg->advertised_host, m->public_port);
            printf("%-32s ", pub);
        }
        advertised_addr(m, adv, sizeof adv);
        printf("%-*s ", w_int, adv);
        if (mapped) {
            if (m->map)
                dialled_addr(m, dial, sizeof dial);
            else
                snprintf(dial, sizeof dial, "-");
            printf("%-*s ", w_dial, dial);
        }
        printf("%s\n", kcheck_status_name(m->status));
        failed += m->status != KCHECK_OK;
    }
    if (failed) putchar('\n');
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        char hint[2 * LABEL_MAX];
        if (m->status == KCHECK_OK) continue;
        node_hint(m, NULL, 0, hint, sizeof hint);
        printf("%s\n", hint);
    }
    return failed;
}

/* The client settings for --tls, ready to paste (host name verification
 * stays on: the certificate names the advertised host). With the gate the
 * protocol is SASL_SSL: an SSL client without SASL would be closed by it. */
static void print_tls_settings(kproxy_t *px)
{
    const kproxy_config_t *c = px->cfg;
    const char *proto = c->auth ? "SASL_SSL" : "SSL";
    printf("security.protocol=%s\n", proto);
    if (px->tls_ca[0]) printf("ssl.ca.location=%s\n", px->tls_ca);
    if (c->tls_client_ca)
        printf("ssl.certificate.location=<your client certificate, signed by %s>\n"
               "ssl.key.location=<its key>\n", c->tls_client_ca);
    printf("\nJava clients:\nsecurity.protocol=%s\n", proto);
    if (px->tls_ca[0]) printf("ssl.truststore.type=PEM\nssl.truststore.location=%s\n", px->tls_ca);
    if (c->tls_client_ca)
        printf("ssl.keystore.type=PEM\nssl.keystore.location=<your client key and certificate, one "
               "PEM file>\n");
    if (px->tls_ca[0])
        printf("\nTLS: every port speaks TLS with a certificate for %s from the CA %s "
               "(`bore kafka-proxy --print-ca` prints it)\n", c->advertised_host, px->tls_ca);
    else
        printf("\nTLS: every port speaks TLS with the certificate %s\n", c->tls_cert);
    if (c->auth)
        printf("SASL: set sasl.mechanism (SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN), sasl.username and "
               "sasl.password (Java: sasl.jaas.config)\n");
}

/* Start-up ends when every node has its pre-flight verdict and (unless
 * --check) its tunnel listens. --check and --strict end it as soon as the
 * verdicts are in. */
static void maybe_ready(kproxy_t *px)
{
    if (px->state != PX_TUNNELS) return;
    int failed = 0, listening = 1, brokers = 0;
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *m = LIST_ENTRY(e, node_t, link);
        if (!m->checked) return;
        failed += m->status != KCHECK_OK;
        listening &= m->public_port != 0;
        brokers += m->id >= 0;
    }
    if (px->cfg->check_only || (px->cfg->strict && failed)) {
        if (px->sasl_cluster)
            printf("bore kafka-proxy: Kafka at %s:%u (SASL: the brokers are listed to authenticated "
                   "clients only; the bootstrap address was checked)\n\n",
                   px->bs_host, px->bs_port);
        else
            printf("bore kafka-proxy: Kafka at %s:%u (%d broker%s)\n\n", px->bs_host, px->bs_port,
                   brokers, brokers == 1 ? "" : "s");
        print_table(px, 0);
        int total = brokers + 1;
        if (failed == 0)
            printf("\nevery address is reachable\n");
        else
            printf("\n%d of %d addresses failed the pre-flight\n", failed, total);
        fflush(stdout);
        if (failed && px->cfg->strict && !px->cfg->check_only)
            fprintf(stderr, "Error: %d of the cluster's addresses cannot be reached from here "
                            "(--strict)\n", failed);
        px_stop(px, failed ? 1 : 0);
        return;
    }
    if (!listening) return;
    if (px->sasl_cluster)
        printf("bore kafka-proxy: Kafka at %s:%u (SASL: brokers are added as clients "
               "authenticate) is public on %s\n\n",
               px->bs_host, px->bs_port, px->cfg->advertised_host);
    else
        printf("bore kafka-proxy: Kafka at %s:%u (%d broker%s) is public on %s\n\n", px->bs_host,
               px->bs_port, brokers, brokers == 1 ? "" : "s", px->cfg->advertised_host);
    print_table(px, 1);
    printf("\n");
    print_bootstrap_servers(px);
    if (px->tls) print_tls_settings(px);
    fflush(stdout);
    px->state = PX_RUNNING;
    save_ports(px);
    if (px->cfg->tui) px->tui = tui_start(px->loop);
    if (failed)
        log_warn("ready: %d brokers exposed; %d address%s failed the pre-flight (see above)", brokers,
                 failed, failed == 1 ? "" : "es");
    else
        log_info("ready: %d brokers exposed", brokers);
}

static void on_tunnel_closed(void *ctx, tunnel_t *t, const char *error)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    char name[32];
    (void)t;
    n->tunnel = NULL;
    kmetrics_node_port(&n->m, 0);
    if (px->state == PX_DONE) return;
    /* One failure, one message: the other tunnels are closed quietly. */
    if (error == NULL)
        fprintf(stderr, "Error: the server closed the tunnel for %s\n", node_name(n, name, sizeof name));
    else if (px->state == PX_RUNNING)
        fprintf(stderr, "Error: the tunnel for %s ended: %s\n", node_name(n, name, sizeof name), error);
    else
        fprintf(stderr, "Error: %s\n", error);
    px_stop(px, 1);
}

static void on_tunnel_lost(void *ctx, tunnel_t *t)
{
    node_t *n = ctx;
    char who[32];
    (void)t;
    n->reconnecting = 1;
    kmetrics_node_lost(&n->m);
    status_event("%s lost its control connection: reconnecting",
                 n->id < 0 ? "the bootstrap address" : node_name(n, who, sizeof who));
}

static int on_tunnel_pair(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb rr,
                          uv_tcp_t *local, relay_release_cb rl, const uint8_t *first, size_t len);

static void node_resolve(node_t *n);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    node_t *n = req->data;
    n->resolving = 0;
    struct sockaddr_storage addrs[TUNNEL_MAX_TARGETS];
    int count = resolve_copy(res, addrs, TUNNEL_MAX_TARGETS);
    uv_freeaddrinfo(res);
    if (status == UV_ECANCELED || n->px->state == PX_DONE) return; /* shutting down */
    char label[LABEL_MAX], hint[2 * LABEL_MAX];
    node_label(n, label, sizeof label);
    if (status < 0 || count == 0) {
        /* The pre-flight reports it with its advice; visitors' connections
         * are closed with the same advice in the tunnel's log line. */
        char adv[ADDR_MAX];
        advertised_addr(n, adv, sizeof adv);
        if (n->map)
            snprintf(hint, sizeof hint, "%s, which does not resolve here (correct its --map)", label);
        else
            snprintf(hint, sizeof hint, "%s, which does not resolve here (restart bore kafka-proxy "
                     "with --map %s=<host>:<port>)", label, adv);
        log_debug("cannot resolve the host of %s: %s", label,
                  uv_strerror(status < 0 ? status : UV_EAI_NONAME));
        n->n_addrs = 0;
        if (n->tunnel != NULL) tunnel_set_target(n->tunnel, addrs, 0, hint);
    } else {
        memcpy(n->addrs, addrs, (size_t)count * sizeof addrs[0]);
        n->n_addrs = count;
        if (n->tunnel != NULL) tunnel_set_target(n->tunnel, addrs, count, label);
    }
    bootstrap_targets(n->px);
    if (n->px->state != PX_DONE && n->resolve_again) {
        n->resolve_again = 0;
        node_resolve(n);
    }
}

/* (Re)resolves the node's internal address; the tunnel dials the result. */
static void node_resolve(node_t *n)
{
    if (n->resolving) {
        n->resolve_again = 1;
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%d", dial_port(n));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    n->gai.data = n;
    if (uv_getaddrinfo(n->px->loop, &n->gai, on_resolved, dial_host(n), port, &hints) == 0)
        n->resolving = 1;
}

/* The pre-flight's verdict. At start-up it goes into the table; for a
 * broker learned later, into the log, with the advice. */
static void on_checked(void *ctx, const kcheck_result_t *r)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    n->check = NULL;
    n->checked = 1;
    n->status = r->status;
    if (px->cfg->broker_tls && r->status == KCHECK_TLS) n->status = KCHECK_OK; /* as expected */
    n->check_ms = (unsigned)r->ms;
    snprintf(n->detail, sizeof n->detail, "%s", r->detail ? r->detail : "");
    char label[LABEL_MAX], hint[2 * LABEL_MAX];
    node_label(n, label, sizeof label);
    if (px->state != PX_RUNNING) {
        log_debug("pre-flight: %s: %s (%s, %u ms)", label, kcheck_status_name(r->status), n->detail,
                  n->check_ms);
        maybe_ready(px);
        return;
    }
    if (r->status == KCHECK_OK) {
        log_info("pre-flight: %s: ok (ApiVersions answered in %u ms)", label, n->check_ms);
        return;
    }
    node_hint(n, NULL, 1, hint, sizeof hint);
    log_warn("pre-flight: %s: %s: %s", label, kcheck_status_name(r->status), hint);
}

/* (Re)checks the node's address (kcheck.h), replacing a check in flight. */
static void node_check(node_t *n)
{
    if (n->check) kcheck_cancel(n->check);
    n->checked = 0;
    char host[HOST_MAX];
    snprintf(host, sizeof host, "%s", dial_host(n));
    n->check = kcheck_start(n->px->loop, host, (uint16_t)dial_port(n), KCHECK_DEADLINE_MS, on_checked, n);
    if (n->check == NULL) {
        fprintf(stderr, "Error: out of memory\n");
        px_stop(n->px, 1);
    }
}

/* Opens the node's tunnel and resolves its address. Out of memory ends the
 * proxy. */
static void node_open(node_t *n)
{
    kproxy_t *px = n->px;
    char name[32];
    /* --port pins the bootstrap; otherwise the port this node had last time */
    uint16_t remembered = px->ports ? kports_get(px->ports, n->id) : 0;
    uint16_t want = n->id < 0 && px->cfg->port ? px->cfg->port : remembered;
    if (want != 0 && want == remembered && !(n->id < 0 && px->cfg->port))
        log_info("%s: asking for port %u, its port last time (%s/%s)", node_name(n, name, sizeof name),
                 want, px->state_dir, KPORTS_FILE);
    tunnel_config_t tc = {.to = px->to, .n_servers = px->n_servers, .port = want,
                          .port_preferred = !(n->id < 0 && px->cfg->port), .secret = px->cfg->secret,
                          .heartbeat_timeout_ms = px->cfg->heartbeat_timeout_ms,
                          .name = node_name(n, name, sizeof name), .reconnect = px->cfg->reconnect,
                          .reconnect_attempts = px->cfg->reconnect_attempts,
                          .reclaim_ms = px->cfg->reclaim_ms};
    memcpy(tc.servers, px->servers, sizeof tc.servers);
    tunnel_handler_t th = {on_tunnel_listening, on_tunnel_closed, on_tunnel_lost, on_tunnel_pair, n};
    n->opened = 1;
    n->tunnel = tunnel_open(px->loop, &tc, &th);
    if (n->tunnel == NULL) {
        fprintf(stderr, "Error: out of memory\n");
        px_stop(px, 1);
        return;
    }
    char label[LABEL_MAX];
    struct sockaddr_storage none[1];
    tunnel_set_target(n->tunnel, none, 0, node_label(n, label, sizeof label)); /* until resolved */
    node_resolve(n);
}

/* A node (id -1: the bootstrap address); its tunnel is opened now if `open`. */
static node_t *node_add(kproxy_t *px, int32_t id, const char *host, size_t host_len, int32_t port,
                        int open)
{
    if (px->n_nodes >= NODES_MAX) {
        log_error("the cluster names more than %d brokers; not opening a tunnel for broker %d",
                  NODES_MAX, id);
        return NULL;
    }
    node_t *n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->px = px;
    n->id = id;
    if (host_len >= HOST_MAX) host_len = HOST_MAX - 1;
    memcpy(n->host, host, host_len);
    n->port = port;
    node_map(n);
    kmetrics_node_init(&n->m, id);
    list_init(&n->waiters);
    list_push(&px->nodes, &n->link);
    px->n_nodes++;
    if (open) node_open(n);
    return n;
}

/* ---- the codec's view of the mapping -------------------------------------- */

/* kr_lookup_fn: the public address for an address the cluster advertised.
 * A node seen for the first time gets a tunnel (and the answer "not known
 * yet"); a node whose address changed is followed. */
static int lookup(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    kconn_t *kc = ctx;
    kproxy_t *px = kc->px;
    const char *host = (const char *)frame + a->host_str_off;
    out->host = px->cfg->advertised_host;
    out->host_len = strlen(out->host);
    if (a->kind == KS_CONTROLLER) {
        /* Controller listeners (DescribeQuorum) are not tunnelled: clients only
         * display them. Hide the internal address. */
        out->port = 0;
        return KR_DONE;
    }
    node_t *n = node_find(px, a->node_id);
    char label[LABEL_MAX];
    if (n == NULL) {
        n = node_add(px, a->node_id, host, a->host_len, a->port, 0);
        if (n == NULL) return -1;
        log_info("new %s: opening a tunnel", node_label(n, label, sizeof label));
        status_event("broker %d added (%.*s:%d)", a->node_id, (int)a->host_len, host, a->port);
        node_open(n);
        if (n->tunnel) node_check(n);
    } else if (n->port != a->port || strlen(n->host) != a->host_len ||
               memcmp(n->host, host, a->host_len) != 0) {
        char from[LABEL_MAX];
        node_label(n, from, sizeof from);
        size_t len = a->host_len < HOST_MAX ? a->host_len : HOST_MAX - 1;
        memcpy(n->host, host, len);
        n->host[len] = '\0';
        n->port = a->port;
        node_map(n);
        char adv[ADDR_MAX], dial[ADDR_MAX];
        advertised_addr(n, adv, sizeof adv);
        dialled_addr(n, dial, sizeof dial);
        log_info("%s moved to %s%s%s%s", from, adv, n->map ? " (dialled " : "", n->map ? dial : "",
                 n->map ? ")" : "");
        if (n->tunnel) {
            struct sockaddr_storage none[1];
            tunnel_set_target(n->tunnel, none, 0, node_label(n, label, sizeof label));
        }
        node_resolve(n);
        node_check(n);
    }
    if (n->public_port == 0) return n->tunnel ? KR_PENDING : -1;
    out->port = n->public_port;
    if (a->in_tag && log_enabled(LOG_DEBUG)) /* KIP-951 leader hint in a Produce/Fetch/ShareFetch response */
        log_debug("leader hint (NodeEndpoints): broker %d at %.*s:%d rewritten to %s:%u", n->id,
                  (int)a->host_len, host, a->port, out->host, out->port);
    return KR_DONE;
}

static void wake_waiters(node_t *n)
{
    while (!list_empty(&n->waiters)) {
        kconn_t *kc = LIST_ENTRY(n->waiters.next, kconn_t, wait_link);
        list_remove(&kc->wait_link);
        kc->waiting_on = NULL;
        int rc = kstream_resume(&kc->ks);
        if (rc == KR_PENDING) {
            node_t *m = node_find(n->px, kc->ks.plan.pending_node);
            if (m != NULL) {
                kc->waiting_on = m;
                list_push(&m->waiters, &kc->wait_link);
                continue;
            }
            rc = KF_BAD;
        }
        if (rc < 0) {
            char label[LABEL_MAX];
            log_warn("closing a client connection to %s: %s", node_label(kc->node, label, sizeof label),
                     kc->ks.error ? kc->ks.error : "rewrite failed");
            relay_close(kc->relay);
            continue;
        }
        relay_continue(kc->relay, 1);
    }
}

/* ---- proxied connections ------------------------------------------------------ */

static int emit(void *ctx, const uint8_t *p, size_t len, void *owned)
{
    kconn_t *kc = ctx;
    relay_emit(kc->relay, 1, p, len, owned);
    return 0;
}

static void on_request(void *ctx, kf_req_t *req)
{
    kconn_t *kc = ctx;
    kmetrics_request(&kc->node->m, req);
    if (req->intercept)
        log_warn("a client uses SaslHandshake v0 (raw SASL tokens), which cannot be proxied: "
                 "answering UNSUPPORTED_VERSION; use a client with SaslHandshake v1");
    else
        log_debug("request api %d v%d correlation %d", req->api_key, req->api_version, req->corr_id);
}

static void on_response(void *ctx, const kf_req_t *req, int rewritten)
{
    kconn_t *kc = ctx;
    kmetrics_response(&kc->node->m, req, rewritten);
}

/* Client -> broker: through the gate until the client has authenticated
 * (nothing reaches the broker before), then inspected and forwarded as is. */
static ssize_t filter_requests(void *ctx, relay_t *r, int dir, const uint8_t *p, size_t n)
{
    kconn_t *kc = ctx;
    size_t gated = 0;
    if (kc->gate != NULL && !kgate_passed(kc->gate)) {
        ssize_t used = kgate_input(kc->gate, p, n);
        if (used < 0 || !kgate_passed(kc->gate)) return used;
        gated = (size_t)used;
        p += gated;
        n -= gated;
        if (n == 0) return (ssize_t)gated;
    }
    if (kstream_request(&kc->ks, p, n) != 0) {
        char label[LABEL_MAX];
        log_warn("closing a client connection to %s: %s", node_label(kc->node, label, sizeof label),
                 kc->ks.error);
        return -1;
    }
    relay_emit(r, dir, p, n, NULL);
    return (ssize_t)(gated + n);
}

/* The gate's answers go to the client at once. */
static void gate_emit(void *ctx, uint8_t *owned, size_t len)
{
    kconn_t *kc = ctx;
    relay_emit(kc->relay, 1, owned, len, owned);
    relay_continue(kc->relay, 1);
}

static void gate_close(void *ctx)
{
    kconn_t *kc = ctx;
    relay_close(kc->relay);
}

/* Broker -> client: framed, matched, rewritten. A response naming a broker
 * without a tunnel yet pauses this direction until the tunnel listens. */
static ssize_t filter_responses(void *ctx, relay_t *r, int dir, const uint8_t *p, size_t n)
{
    kconn_t *kc = ctx;
    (void)r;
    (void)dir;
    if (kc->ks.pending) return 0;
    ssize_t used = kstream_response(&kc->ks, p, n);
    if (used < 0) {
        char label[LABEL_MAX];
        log_warn("closing a client connection to %s: %s", node_label(kc->node, label, sizeof label),
                 kc->ks.error);
        return -1;
    }
    if (kc->ks.pending) {
        kmetrics_held(&kc->node->m);
        node_t *m = node_find(kc->px, kc->ks.plan.pending_node);
        if (m == NULL) return -1;
        kc->waiting_on = m;
        list_push(&m->waiters, &kc->wait_link);
    }
    return used;
}

/* Large buffered responses (Fetch v16+) are read in place. */
static int alloc_responses(void *ctx, uv_buf_t *buf)
{
    kconn_t *kc = ctx;
    uint8_t *p;
    size_t len;
    if (!kstream_response_buffer(&kc->ks, &p, &len)) return 0;
    *buf = uv_buf_init((char *)p, (unsigned)(len < (1u << 30) ? len : 1u << 30));
    return 1;
}

static void kconn_free(uv_handle_t *h) { free(h->data); }

static void kconn_end(void *user)
{
    kconn_t *kc = user;
    kmetrics_conn_close(&kc->node->m);
    list_remove(&kc->wait_link);
    kgate_free(kc->gate);
    kstream_free(&kc->ks);
    tls_conn_free(kc->btls);
    if (kc->tls == NULL) {
        free(kc);
        return;
    }
    tls_conn_free(kc->tls);
    kc->tls = NULL;
    uv_close((uv_handle_t *)&kc->deadline, kconn_free);
}

static void on_tls_handshake(void *arg)
{
    kconn_t *kc = arg;
    uv_timer_stop(&kc->deadline);
}

static void on_tls_deadline(uv_timer_t *t)
{
    kconn_t *kc = t->data;
    char name[32];
    log_warn("%s: a client did not finish its TLS handshake within %u ms; closing",
             node_name(kc->node, name, sizeof name), kc->px->cfg->tls_handshake_ms);
    metrics_tls_failure("handshake_deadline");
    relay_close(kc->relay);
}

/* --tls: the relay's side a (the client, through the tunnel) gets a TLS
 * transport, and the handshake a deadline. */
static int kconn_tls(kconn_t *kc)
{
    char name[48];
    node_name(kc->node, name, sizeof name);
    if ((kc->tls = tls_conn_new(kc->px->tls, 1, name)) == NULL) return UV_ENOMEM;
    tls_conn_on_handshake(kc->tls, on_tls_handshake, kc);
    kc->tp = (relay_transport_t){tls_recv, tls_send, tls_pending, tls_shutdown, kc->tls};
    uv_timer_init(kc->px->loop, &kc->deadline);
    kc->deadline.data = kc;
    uv_timer_start(&kc->deadline, on_tls_deadline, kc->px->cfg->tls_handshake_ms, 0);
    return 0;
}

static int on_tunnel_pair(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb rr,
                          uv_tcp_t *local, relay_release_cb rl, const uint8_t *first, size_t len)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    (void)t;
    kconn_t *kc = calloc(1, sizeof *kc);
    if (kc == NULL) return UV_ENOMEM;
    kc->px = px;
    kc->node = n;
    list_init(&kc->wait_link);
    kstream_init(&kc->ks, px->cfg->max_frame);
    kc->ks.lookup = lookup;
    kc->ks.lookup_ctx = kc;
    kc->ks.emit = emit;
    kc->ks.emit_ctx = kc;
    kc->ks.on_request = on_request;
    kc->ks.request_ctx = kc;
    if (px->cfg->auth != NULL) {
        char who[LABEL_MAX + 32], label[LABEL_MAX];
        snprintf(who, sizeof who, "client #%llu of %s", (unsigned long long)++px->n_conns,
                 node_label(n, label, sizeof label));
        kgate_config_t gc = {px->cfg->auth, px->cfg->auth_plain, px->cfg->auth_deadline_ms,
                             px->apis, px->n_apis};
        kgate_io_t io = {gate_emit, gate_close, kc};
        if ((kc->gate = kgate_new(px->loop, &gc, &io, who)) == NULL) {
            kstream_free(&kc->ks);
            free(kc);
            return UV_ENOMEM;
        }
    }
    kc->ks.on_response = on_response;
    relay_filter_t filters[2] = {{filter_requests, kc, NULL}, {filter_responses, kc, alloc_responses}};
    const relay_transport_t *tp[2] = {NULL, NULL};
    if (px->tls) {
        if (kconn_tls(kc) != 0) {
            kgate_free(kc->gate);
            kstream_free(&kc->ks);
            free(kc);
            return UV_ENOMEM;
        }
        tp[0] = &kc->tp;
    }
    if (px->broker_tls) {
        /* The broker's certificate must name the address it advertises. */
        if ((kc->btls = tls_conn_new(px->broker_tls, 0, n->host)) == NULL) {
            kc->btp.ctx = NULL;
        } else {
            kc->btp = (relay_transport_t){tls_recv, tls_send, tls_pending, tls_shutdown, kc->btls};
            tp[1] = &kc->btp;
        }
    }
    int rc = relay_start_transport(&px->relays, remote, rr, local, rl, first, len, filters, tp,
                                   kconn_end, kc, &kc->relay);
    if (rc != 0) {
        kgate_free(kc->gate);
        kstream_free(&kc->ks);
        tls_conn_free(kc->btls);
        tls_conn_free(kc->tls);
        if (kc->tls)
            uv_close((uv_handle_t *)&kc->deadline, kconn_free);
        else
            free(kc);
        return rc;
    }
    relay_set_stats(kc->relay, &n->m.bytes);
    n->m.bytes.bytes[0] += len;
    kmetrics_conn_open(&n->m);
    return 0;
}

/* ---- start-up: ask the cluster for its brokers ---------------------------------- */

static void probe_fail(kproxy_t *px, const char *why)
{
    fprintf(stderr, "Error: Kafka at %s:%u: %s\n", px->bs_host, px->bs_port, why);
    px_stop(px, 1);
}

static void probe_close(kproxy_t *px)
{
    px->probe_open = 0;
    uv_close((uv_handle_t *)&px->probe, NULL);
}

static void probe_start(kproxy_t *px);
static void start_nodes(kproxy_t *px);

static void probe_restart(uv_handle_t *h)
{
    kproxy_t *px = h->data;
    if (px->state == PX_METADATA) probe_start(px);
}

/* The SaslHandshake answer of the second probe. A listener without SASL
 * answers ILLEGAL_SASL_STATE; one with SASL lists its mechanisms (error 0
 * for PLAIN, UNSUPPORTED_SASL_MECHANISM otherwise). Its Metadata is then out
 * of the proxy's reach (the proxy holds no credentials): only the bootstrap
 * gets a tunnel at start, and each broker gets its own as soon as an
 * authenticated client's Metadata names it. */
static void probe_sasl_answer(kproxy_t *px, const uint8_t *frame, size_t len)
{
    kw_cur c = kw_init(frame + 8, len - 8); /* after size and correlation id */
    int16_t err = kw_i16(&c);
    int32_t n = kw_i32(&c);
    if (c.err || (err != 0 && err != 33)) {
        probe_fail(px, "the broker closed the connection (is it Kafka, and plaintext?)");
        return;
    }
    char mechs[128] = "";
    size_t used = 0;
    for (int32_t i = 0; i < n && i < 8; i++) {
        const uint8_t *m;
        size_t mlen;
        kw_string(&c, 0, 0, &m, &mlen);
        if (c.err) break;
        int w = snprintf(mechs + used, sizeof mechs - used, "%s%.*s", i ? ", " : "", (int)mlen,
                         (const char *)m);
        if (w < 0 || (size_t)w >= sizeof mechs - used) break;
        used += (size_t)w;
    }
    if (px->cfg->auth != NULL) {
        char why[512];
        snprintf(why, sizeof why, "the cluster requires SASL itself (%s): the authentication gate "
                 "(--auth-user, --auth-file) is for clusters without their own; run without them "
                 "and clients authenticate with the brokers through the proxy",
                 used ? mechs : "no mechanism listed");
        probe_fail(px, why);
        return;
    }
    px->sasl_cluster = 1;
    px->state = PX_TUNNELS;
    probe_close(px);
    log_info("Kafka at %s:%u requires SASL (%s): clients authenticate with the brokers through the "
             "proxy; each broker gets its tunnel when a client's Metadata first names it",
             px->bs_host, px->bs_port, used ? mechs : "no mechanism listed");
    if (node_add(px, -1, px->bs_host, strlen(px->bs_host), px->bs_port, 0) == NULL) {
        probe_fail(px, "out of memory");
        return;
    }
    start_nodes(px);
}

/* Every node known at start-up: the pre-flight of each at once, and (not
 * with --check) the bootstrap's tunnel, which opens the brokers' once it
 * listens. */
static void start_nodes(kproxy_t *px)
{
    for (list_t *e = px->nodes.next; e != &px->nodes && px->state != PX_DONE; e = e->next)
        node_check(LIST_ENTRY(e, node_t, link));
    if (px->state != PX_DONE && !px->cfg->check_only) node_open(node_find(px, -1));
}

/* The Metadata answer: one tunnel per broker, plus the bootstrap's. */
static void probe_metadata(kproxy_t *px, const uint8_t *frame, size_t len)
{
    ks_scan_t s = {0};
    if (ks_scan(&s, KAFKA_METADATA, 1, frame, len) != 0 || s.n_addrs == 0) {
        ks_free(&s);
        probe_fail(px, "unreadable Metadata response (is it a Kafka broker?)");
        return;
    }
    px->state = PX_TUNNELS;
    probe_close(px);
    if (node_add(px, -1, px->bs_host, strlen(px->bs_host), px->bs_port, 0) == NULL) {
        ks_free(&s);
        probe_fail(px, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < s.n_addrs; i++) {
        const ks_addr_t *a = &s.addrs[i];
        if (node_find(px, a->node_id)) continue;
        if (node_add(px, a->node_id, (const char *)frame + a->host_str_off, a->host_len, a->port, 0) ==
            NULL) {
            ks_free(&s);
            probe_fail(px, px->n_nodes >= NODES_MAX ? "the cluster names more brokers than the proxy "
                                                      "tunnels (1024)"
                                                    : "out of memory");
            return;
        }
    }
    if (px->cfg->check_only)
        log_info("the cluster has %u broker%s; checking each", s.n_addrs, s.n_addrs == 1 ? "" : "s");
    else
        log_info("the cluster has %u broker%s; checking each and opening tunnels on %s", s.n_addrs,
                 s.n_addrs == 1 ? "" : "s", px->to);
    ks_free(&s);
    start_nodes(px);
}

/* Sends the probe's plaintext (p may be NULL: only what TLS has waiting).
 * The probe's requests are small: the socket takes them at once. */
static int probe_send(kproxy_t *px, const uint8_t *p, size_t n)
{
    uint8_t *out = NULL;
    size_t out_n = 0;
    if (px->probe_tls) {
        uv_buf_t in = uv_buf_init((char *)p, (unsigned)n);
        if (tls_send(px->probe_tls, &in, p ? 1 : 0, &out, &out_n) != 0) return -1;
        p = out;
        n = out_n;
    }
    int rc = 0;
    if (n > 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        rc = uv_try_write((uv_stream_t *)&px->probe, &b, 1) == (int)n ? 0 : -1;
    }
    free(out);
    return rc;
}

static void probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kproxy_t *px = h->data;
    (void)hint;
    size_t cap = 1 << 20; /* a Metadata answer for no topics is small */
    if (px->probe_tls) {
        if (px->probe_cipher == NULL) px->probe_cipher = malloc(64 * 1024);
        *buf = uv_buf_init((char *)px->probe_cipher, px->probe_cipher ? 64 * 1024 : 0);
        return;
    }
    if (px->probe_buf == NULL) px->probe_buf = malloc(cap);
    *buf = uv_buf_init((char *)px->probe_buf + px->probe_len,
                       px->probe_buf ? (unsigned)(cap - px->probe_len) : 0);
}

static void probe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    kproxy_t *px = st->data;
    (void)buf;
    if (px->state != PX_METADATA || nread == 0) return;
    if (nread < 0) {
        if (nread == UV_EOF && px->probe_frames == 1 && !px->probe_sasl) {
            /* ApiVersions answered, then the connection closed instead of
             * answering Metadata: what a SASL listener does. Ask it. */
            px->probe_sasl = 1;
            px->probe_frames = 0;
            px->probe_len = 0;
            px->probe_open = 0;
            uv_close((uv_handle_t *)&px->probe, probe_restart);
            return;
        }
        probe_fail(px, nread == UV_EOF ? "the broker closed the connection (is it Kafka, and plaintext?)"
                                       : uv_strerror((int)nread));
        return;
    }
    if (px->probe_tls) {
        uint8_t *plain;
        size_t n;
        int rc = tls_recv(px->probe_tls, px->probe_cipher, (size_t)nread, &plain, &n);
        if (rc < 0 || probe_send(px, NULL, 0) != 0) {
            free(plain);
            probe_fail(px, "the TLS handshake with the broker failed (see above; --broker-ca is the "
                           "CA that signed the brokers' certificates)");
            return;
        }
        if (px->probe_buf == NULL) px->probe_buf = malloc(1 << 20);
        if (px->probe_buf == NULL || n > (1u << 20) - px->probe_len) {
            free(plain);
            probe_fail(px, px->probe_buf ? "Metadata response too large" : "out of memory");
            return;
        }
        if (n) memcpy(px->probe_buf + px->probe_len, plain, n);
        free(plain);
        nread = (ssize_t)n;
    }
    px->probe_len += (size_t)nread;
    while (px->state == PX_METADATA) {
        uint32_t size;
        int rc = kf_size(px->probe_buf, px->probe_len, (1 << 20) - 4, &size);
        if (rc == KF_NEED_MORE) return;
        if (rc != 0) {
            probe_fail(px, kf_looks_like_tls(px->probe_buf, px->probe_len)
                               ? "the broker answered with TLS: it is an SSL listener; run with "
                                 "--broker-tls (and --broker-ca FILE, the CA of its certificate)"
                               : "the answer is not Kafka (bad frame size)");
            return;
        }
        if (px->probe_len < 4 + (size_t)size) {
            if (4 + (size_t)size > (1 << 20)) probe_fail(px, "Metadata response too large");
            return;
        }
        if (px->probe_frames++ == 1) {
            if (px->probe_sasl)
                probe_sasl_answer(px, px->probe_buf, 4 + (size_t)size);
            else
                probe_metadata(px, px->probe_buf, 4 + (size_t)size);
            return;
        }
        /* The first answer is ApiVersions: the gate answers clients from it. */
        int na = kgate_parse_apis(px->probe_buf, 4 + (size_t)size, px->apis, KGATE_APIS_MAX);
        px->n_apis = na > 0 ? (size_t)na : 0;
        memmove(px->probe_buf, px->probe_buf + 4 + size, px->probe_len - 4 - size);
        px->probe_len -= 4 + (size_t)size;
    }
}

static void probe_start(kproxy_t *px);

static void probe_retry(uv_handle_t *h)
{
    kproxy_t *px = h->data;
    if (px->state != PX_METADATA) return;
    px->bs_idx++;
    probe_start(px);
}

/* A failed connect: the broker's next address, or the end. */
static void probe_connect_failed(kproxy_t *px, int status)
{
    if (px->bs_idx + 1 < px->n_bs) {
        px->probe_open = 0;
        uv_close((uv_handle_t *)&px->probe, probe_retry);
        return;
    }
    char why[128];
    snprintf(why, sizeof why, "not reachable: %s", uv_strerror(status));
    probe_fail(px, why);
}

static void probe_connected(uv_connect_t *req, int status)
{
    kproxy_t *px = req->data;
    if (px->state != PX_METADATA || !px->probe_open) return;
    if (status < 0) {
        probe_connect_failed(px, status);
        return;
    }
    /* ApiVersions v0 and Metadata v1 for no topics (an empty array), pipelined;
     * the second probe asks SaslHandshake v1 (PLAIN) instead of Metadata. */
    static const uint8_t req_bytes[] = {
        0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, 'b', 'o', 'r', 'e',
        0, 0, 0, 18, 0, 3, 0, 1, 0, 0, 0, 2, 0, 4, 'b', 'o', 'r', 'e', 0, 0, 0, 0,
    };
    static const uint8_t sasl_bytes[] = {
        0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, 'b', 'o', 'r', 'e',
        0, 0, 0, 21, 0, 17, 0, 1, 0, 0, 0, 2, 0, 4, 'b', 'o', 'r', 'e', 0, 5, 'P', 'L', 'A', 'I', 'N',
    };
    const uint8_t *bytes = px->probe_sasl ? sasl_bytes : req_bytes;
    size_t len = px->probe_sasl ? sizeof sasl_bytes : sizeof req_bytes;
    if (px->broker_tls && (px->probe_tls = tls_conn_new(px->broker_tls, 0, px->bs_host)) == NULL) {
        probe_fail(px, "out of memory");
        return;
    }
    if (probe_send(px, bytes, len) != 0 ||
        uv_read_start((uv_stream_t *)&px->probe, probe_alloc, probe_read) != 0)
        probe_fail(px, "cannot send the Metadata request");
}

/* Connects the probe to the broker's address bs_idx. */
static void probe_start(kproxy_t *px)
{
    tls_conn_free(px->probe_tls);
    px->probe_tls = NULL;
    uv_tcp_init(px->loop, &px->probe);
    px->probe.data = px;
    px->probe_open = 1;
    px->probe_req.data = px;
    int rc = uv_tcp_connect(&px->probe_req, &px->probe,
                            (const struct sockaddr *)&px->bs_addrs[px->bs_idx], probe_connected);
    if (rc != 0) probe_connect_failed(px, rc);
}

static void on_startup_timeout(uv_timer_t *t)
{
    kproxy_t *px = t->data;
    if (px->state == PX_METADATA)
        probe_fail(px, "no answer within 10 s");
    else if (px->state == PX_TUNNELS) {
        fprintf(stderr, "Error: the tunnel server %s did not open every tunnel within 10 s\n",
                px->to);
        px_stop(px, 1);
    }
}

/* ---- /status and the terminal view ---------------------------------------------- */

static const char *node_state(const node_t *n)
{
    if (n->reconnecting && n->tunnel != NULL) return "reconnecting";
    if (n->public_port != 0 && n->tunnel != NULL) return "listening";
    if (n->tunnel != NULL) return "opening";
    return n->opened ? "closed" : "new";
}

/* One row per node, in the printed table's order and with its columns. */
static json_t *px_status(void *ctx)
{
    kproxy_t *px = ctx;
    json_t *root = json_object(), *nodes = json_array();
    node_t *bs = node_find(px, -1);
    char buf[HOST_MAX + 8];
    if (bs && bs->public_port) {
        snprintf(buf, sizeof buf, "%s:%u", px->cfg->advertised_host, bs->public_port);
        json_object_set_new(root, "bootstrap_servers", json_string(buf));
    }
    json_object_set_new(root, "server", json_string(px->to));
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *n = LIST_ENTRY(e, node_t, link);
        char pub[HOST_MAX + 8], adv[ADDR_MAX], dial[ADDR_MAX];
        snprintf(pub, sizeof pub, "%s:%u", px->cfg->advertised_host, n->public_port);
        advertised_addr(n, adv, sizeof adv);
        dialled_addr(n, dial, sizeof dial);
        json_t *r = json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "name", n->m.node, "id", n->id < 0 ? json_null() : json_integer(n->id),
                              "public", n->public_port ? pub : "", "internal", adv, "dialled", dial,
                              "state", node_state(n), "public_port", (json_int_t)n->public_port,
                              "connections_active", (json_int_t)n->m.conns_active,
                              "connections_total", (json_int_t)n->m.conns_total,
                              "bytes_in", (json_int_t)n->m.bytes.bytes[0],
                              "bytes_out", (json_int_t)n->m.bytes.bytes[1],
                              "requests", (json_int_t)n->m.requests_total,
                              "rewritten", (json_int_t)n->m.rewritten, "held", (json_int_t)n->m.held,
                              "reconnects", (json_int_t)n->m.reconnects);
        if (r) json_object_set_new(r, "preflight", json_string(n->checked ? kcheck_status_name(n->status) : "checking"));
        json_array_append_new(nodes, r);
    }
    json_object_set_new(root, "nodes", nodes);
    return root;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void px_stop(kproxy_t *px, int code)
{
    if (px->state == PX_DONE) return;
    px->state = PX_DONE;
    px->exit_code = code;
    if (px->probe_open) {
        px->probe_open = 0;
        uv_close((uv_handle_t *)&px->probe, NULL);
    }
    uv_close((uv_handle_t *)&px->timer, NULL);
    uv_close((uv_handle_t *)&px->sigint, NULL);
    uv_close((uv_handle_t *)&px->sigterm, NULL);
    tui_stop(px->tui);
    px->tui = NULL;
    status_stop();
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *n = LIST_ENTRY(e, node_t, link);
        if (n->resolving) uv_cancel((uv_req_t *)&n->gai);
        if (n->check) kcheck_cancel(n->check);
        n->check = NULL;
        if (n->tunnel) tunnel_close(n->tunnel);
        n->tunnel = NULL;
    }
    relay_close_all(&px->relays);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    kproxy_t *px = sig->data;
    log_info("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    px_stop(px, 0);
}

/* --tls: the server context, with the user's certificate or a leaf for
 * the advertised host from the generated CA. */
static int tls_setup(kproxy_t *px)
{
    const kproxy_config_t *c = px->cfg;
    char err[STATE_PATH_MAX + 256];
    const char *cert = c->tls_cert, *key = c->tls_key;
    tlsca_files_t files;
    if (cert == NULL) {
        /* Resolved at start-up for the remembered ports; asked again (and
         * the reason logged) only if that failed. */
        if (px->state_dir[0] == '\0' &&
            state_dir(c->state_dir, px->state_dir, sizeof px->state_dir) != 0)
            return -1;
        if (tlsca_ensure(px->state_dir, c->advertised_host, &files, err, sizeof err) != 0) {
            fprintf(stderr, "Error: %s\n", err);
            return -1;
        }
        snprintf(px->tls_ca, sizeof px->tls_ca, "%s", files.ca);
        cert = files.cert;
        key = files.key;
    }
    px->tls = tls_server_ctx(cert, key, c->tls_client_ca, err, sizeof err);
    if (px->tls == NULL) {
        fprintf(stderr, "Error: --tls: %s\n", err);
        return -1;
    }
    return 0;
}

int kproxy_run(const kproxy_config_t *cfg)
{
    kproxy_t *px = calloc(1, sizeof *px);
    if (px == NULL) return 1;
    px->cfg = cfg;
    px->loop = uv_default_loop();
    list_init(&px->nodes);
    list_init(&px->relays);
    signal(SIGPIPE, SIG_IGN);
    int code = 1;

    px->bs_host = cfg->bootstrap_host;
    px->bs_port = cfg->bootstrap_port;
    /* A --map by address applies to the bootstrap address too. */
    const kmap_entry_t *bs_map = kmap_find(cfg->maps, -1, px->bs_host, strlen(px->bs_host), px->bs_port);
    const char *bs_dial = bs_map ? bs_map->to_host : px->bs_host;
    uint16_t bs_dial_port = bs_map ? bs_map->to_port : px->bs_port;
    if (bs_map) log_info("Kafka at %s:%u is dialled at %s:%u (--map)", px->bs_host, px->bs_port, bs_dial, bs_dial_port);
    int rc = px->n_bs = resolve_host(px->loop, bs_dial, bs_dial_port, px->bs_addrs, TUNNEL_MAX_TARGETS);
    if (rc < 0) {
        fprintf(stderr, "Error: Kafka at %s:%u: cannot resolve %s: %s\n", px->bs_host, px->bs_port,
                bs_dial, uv_strerror(rc));
        goto out;
    }
    if (cfg->check_only) goto run; /* no server */
    resolve_join(cfg->to_host, cfg->to_port, px->to, sizeof px->to);
    px->n_servers = resolve_host(px->loop, cfg->to_host, cfg->to_port, px->servers, TUNNEL_MAX_TARGETS);
    if (px->n_servers < 0) {
        fprintf(stderr, "Error: could not connect to %s: %s\n", px->to, uv_strerror(px->n_servers));
        goto out;
    }
    if (state_dir(cfg->state_dir, px->state_dir, sizeof px->state_dir) == 0 &&
        (px->ports = malloc(sizeof *px->ports)) != NULL) {
        snprintf(px->ports_key, sizeof px->ports_key, "%s|%s:%u", px->to, px->bs_host, px->bs_port);
        kports_load(px->state_dir, px->ports_key, px->ports);
    } else {
        px->state_dir[0] = '\0'; /* --tls resolves it again, saying why it fails */
        log_warn("no state directory: the public ports will not be remembered across restarts");
    }
    /* Tunnel ports are open to anyone who reaches the server: say so when
     * that is the internet. A secret does not change it (it only decides who
     * may open tunnels). The authentication gate decides who may use them;
     * without TLS the relay still reads every record. */
    int public_server = 0;
    for (int i = 0; i < px->n_servers; i++) public_server |= net_is_public(&px->servers[i]);
    if (public_server && !cfg->tls && cfg->auth != NULL)
        log_warn("Kafka at %s:%u will be public on %s without TLS: the authentication gate decides "
                 "who may use it, but the relay and the network can read every record (--tls "
                 "keeps the traffic from the relay)",
                 px->bs_host, px->bs_port, cfg->advertised_host);
    else if (public_server && !cfg->tls)
        log_warn("Kafka at %s:%u will be public on %s with no TLS and no authentication: anyone "
                 "who finds its ports can read and write every topic, and the server's operator "
                 "sees every byte (--tls keeps the traffic from the relay; --tls-client-ca admits "
                 "only clients with a certificate)",
                 px->bs_host, px->bs_port, cfg->advertised_host);
    else if (public_server && !cfg->tls_client_ca && cfg->auth == NULL)
        log_warn("Kafka at %s:%u will be public on %s with TLS but no authentication: anyone who "
                 "finds its ports can read and write every topic (--tls-client-ca admits only "
                 "clients with a certificate; --auth-user or --auth-file asks for a password)",
                 px->bs_host, px->bs_port, cfg->advertised_host);

    if (cfg->tls && tls_setup(px) != 0) goto out;

run:
    if (cfg->broker_tls) {
        char err[512];
        px->broker_tls = tls_client_ctx(cfg->broker_ca, cfg->broker_cert, cfg->broker_key, err, sizeof err);
        if (px->broker_tls == NULL) {
            fprintf(stderr, "Error: --broker-tls: %s\n", err);
            goto out;
        }
    }
    uv_timer_init(px->loop, &px->timer);
    px->timer.data = px;
    uv_timer_start(&px->timer, on_startup_timeout, STARTUP_MS, 0);
    uv_signal_init(px->loop, &px->sigint);
    uv_signal_init(px->loop, &px->sigterm);
    px->sigint.data = px->sigterm.data = px;
    uv_signal_start(&px->sigint, on_signal, SIGINT);
    uv_signal_start(&px->sigterm, on_signal, SIGTERM);

    if (cfg->auth != NULL && !cfg->check_only)
        log_info("authentication gate: %zu user%s; mechanisms SCRAM-SHA-256, SCRAM-SHA-512%s",
                 cfg->auth->n, cfg->auth->n == 1 ? "" : "s",
                 cfg->auth_plain ? ", PLAIN"
                                 : " (PLAIN is off: without TLS the relay could read passwords; "
                                   "--allow-plain-without-tls turns it on)");
    status_set_source("kafka-proxy", px_status, px);
    if (cfg->metrics_ip != NULL && !cfg->check_only) {
        kmetrics_init();
        if (status_start(px->loop, cfg->metrics_ip, cfg->metrics_port) != 0) {
            px_stop(px, 1);
            uv_run(px->loop, UV_RUN_DEFAULT);
            code = 1;
            goto out;
        }
    }
    log_info("asking Kafka at %s:%u for its brokers", px->bs_host, px->bs_port);
    probe_start(px);
    uv_run(px->loop, UV_RUN_DEFAULT);
    code = px->exit_code;
out:
    while (!list_empty(&px->nodes)) {
        node_t *n = LIST_ENTRY(px->nodes.next, node_t, link);
        list_remove(&n->link);
        kmetrics_node_free(&n->m);
        free(n);
    }
    uv_loop_close(px->loop);
    tls_ctx_free(px->tls);
    tls_conn_free(px->probe_tls);
    tls_ctx_free(px->broker_tls);
    free(px->probe_cipher);
    relay_pool_drain();
    metrics_free();
    free(px->probe_buf);
    free(px->ports);
    free(px);
    return code;
}
