/* main.c - `bore <COMMAND>`: parses the command line and hands a config to
 * the server or client module. Usage errors exit 2, as upstream. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "kproxy.h"
#include "local.h"
#include "log.h"
#include "server.h"
#include "version.h"

static void print_main_help(void)
{
    printf("A modern, simple TCP tunnel in C that exposes local ports, or a whole Kafka cluster,\n"
           "on a remote server, bypassing standard NAT connection firewalls.\n\n"
           "Usage: bore <COMMAND>\n\n"
           "Commands:\n"
           "  local        Starts a local proxy to the remote server\n"
           "  server       Runs the remote proxy server\n"
           "  kafka-proxy  Exposes every broker of a Kafka cluster through the remote server\n"
           "  help         Print this message or the help of the given subcommand(s)\n\n"
           "Options:\n"
           "  -h, --help     Print help\n"
           "  -V, --version  Print version\n");
}

static int unknown_command(const char *arg)
{
    fprintf(stderr, "error: unrecognized subcommand '%s'", arg);
    fputs("\n\nUsage: bore <COMMAND>\n\nFor more information, try '--help'.\n", stderr);
    return 2;
}

static int cmd_local(int argc, char **argv)
{
    cli_opt_t opts[] = {
        {0, NULL, "LOCAL_PORT", "BORE_LOCAL_PORT", NULL, "The local port to expose", 1, NULL},
        {'l', "local-host", "HOST", NULL, "localhost", "The local host to expose", 0, NULL},
        {'t', "to", "TO", "BORE_SERVER", NULL,
         "Address of the remote server to expose local ports to", 1, NULL},
        {'p', "port", "PORT", NULL, "0", "Optional port on the remote server to select", 0, NULL},
        {'s', "secret", "SECRET", "BORE_SECRET", NULL, "Optional secret for authentication", 0,
         NULL},
        {0, "heartbeat-timeout", "SECONDS", "BORE_HEARTBEAT_TIMEOUT", "15",
         "Give up when the server has sent nothing for this long", 0, NULL},
    };
    cli_cmd_t cmd = {"local", "Starts a local proxy to the remote server", opts,
                     sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_OK) return rc == CLI_EXIT_OK ? 0 : rc;

    local_config_t cfg = {.local_host = opts[1].value, .to = opts[2].value, .secret = opts[4].value};
    unsigned hb;
    if (cli_u16(&cmd, &opts[0], &cfg.local_port) || cli_u16(&cmd, &opts[3], &cfg.port) ||
        cli_uint(&cmd, &opts[5], 1, 86400, &hb))
        return CLI_USAGE;
    cfg.heartbeat_timeout_ms = hb * 1000;
    return local_run(&cfg);
}

static int cmd_server(int argc, char **argv)
{
    cli_opt_t opts[] = {
        {0, "min-port", "MIN_PORT", "BORE_MIN_PORT", "1024", "Minimum accepted TCP port number", 0,
         NULL},
        {0, "max-port", "MAX_PORT", "BORE_MAX_PORT", "65535", "Maximum accepted TCP port number", 0,
         NULL},
        {'s', "secret", "SECRET", "BORE_SECRET", NULL, "Optional secret for authentication", 0,
         NULL},
        {0, "bind-addr", "BIND_ADDR", NULL, "0.0.0.0",
         "IP address to bind to, clients must reach this", 0, NULL},
        {0, "bind-tunnels", "BIND_TUNNELS", NULL, NULL,
         "IP address where tunnels will listen on, defaults to --bind-addr", 0, NULL},
        {0, "max-handshakes", "N", "BORE_MAX_HANDSHAKES", "1024",
         "Connections allowed in handshake (unauthenticated) at once", 0, NULL},
        {0, "max-handshakes-per-source", "N", "BORE_MAX_HANDSHAKES_PER_SOURCE", "128",
         "Handshakes one address (IPv6: one /64) may hold once half of them are taken", 0, NULL},
        {0, "max-tunnels", "N", "BORE_MAX_TUNNELS", "1024", "Tunnels allowed at once", 0, NULL},
        {0, "max-pending", "N", "BORE_MAX_PENDING", "8192",
         "Visitors waiting to be accepted, over all tunnels", 0, NULL},
        {0, "max-pending-per-tunnel", "N", "BORE_MAX_PENDING_PER_TUNNEL", "1024",
         "Visitors waiting to be accepted, per tunnel", 0, NULL},
        {0, "max-relays", "N", "BORE_MAX_RELAYS", "8192",
         "Visitor connections relayed at once, over all tunnels", 0, NULL},
        {0, "max-relays-per-tunnel", "N", "BORE_MAX_RELAYS_PER_TUNNEL", "2048",
         "Visitor connections relayed at once, per tunnel", 0, NULL},
        {0, "max-relay-memory", "MIB", "BORE_MAX_RELAY_MEMORY", "256",
         "Buffer memory all relays may hold, in MiB, beyond 8 KiB each", 0, NULL},
    };
    cli_cmd_t cmd = {"server", "Runs the remote proxy server", opts, sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_OK) return rc == CLI_EXIT_OK ? 0 : rc;

    server_config_t cfg = {.secret = opts[2].value, .bind_addr = opts[3].value};
    cfg.bind_tunnels = opts[4].value ? opts[4].value : cfg.bind_addr;
    if (cli_u16(&cmd, &opts[0], &cfg.min_port) || cli_u16(&cmd, &opts[1], &cfg.max_port) ||
        cli_uint(&cmd, &opts[5], 1, 1000000, &cfg.max_handshakes) ||
        cli_uint(&cmd, &opts[6], 1, 1000000, &cfg.max_handshakes_per_source) ||
        cli_uint(&cmd, &opts[7], 1, 1000000, &cfg.max_tunnels) ||
        cli_uint(&cmd, &opts[8], 1, 1000000, &cfg.max_pending) ||
        cli_uint(&cmd, &opts[9], 1, 1000000, &cfg.max_pending_per_tunnel) ||
        cli_uint(&cmd, &opts[10], 1, 1000000, &cfg.max_relays) ||
        cli_uint(&cmd, &opts[11], 1, 1000000, &cfg.max_relays_per_tunnel) ||
        cli_uint(&cmd, &opts[12], 1, 1u << 20, &cfg.max_relay_memory_mib))
        return CLI_USAGE;
    if (cfg.min_port > cfg.max_port) {
        fprintf(stderr, "error: port range is empty\n");
        return 2;
    }
    return server_run(&cfg);
}

/* A tunnel holds three descriptors per visitor; the soft limit (often 1024)
 * is raised to the hard limit so the caps, not the kernel, decide. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cmd_kafka_proxy(int argc, char **argv)
{
    cli_opt_t opts[] = {
        {'b', "bootstrap-server", "HOST:PORT", NULL, "localhost:9092",
         "Any broker of the Kafka cluster to expose", 0, NULL},
        {'t', "to", "TO", "BORE_SERVER", "bore.pub", "Address of the remote server", 0, NULL},
        {'s', "secret", "SECRET", "BORE_SECRET", NULL, "Optional secret for authentication", 0,
         NULL},
        {0, "advertised-host", "HOST", NULL, NULL,
         "Host name clients use to reach the remote server [default: the --to host]", 0, NULL},
        {'p', "port", "PORT", NULL, "0", "Public port of the bootstrap address (0: any)", 0, NULL},
        {0, "heartbeat-timeout", "SECONDS", "BORE_HEARTBEAT_TIMEOUT", "15",
         "Give up when the server has sent nothing for this long", 0, NULL},
        {0, "max-frame-size", "BYTES", NULL, "104857600",
         "Largest Kafka response the proxy buffers to rewrite", 0, NULL},
    };
    cli_cmd_t cmd = {"kafka-proxy",
                     "Exposes every broker of a Kafka cluster through the remote server", opts,
                     sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_OK) return rc == CLI_EXIT_OK ? 0 : rc;
    kproxy_config_t cfg = {.bootstrap = opts[0].value, .to = opts[1].value,
                           .secret = opts[2].value, .advertised_host = opts[3].value};
    if (cfg.advertised_host == NULL) cfg.advertised_host = cfg.to;
    unsigned hb, max_frame;
    if (cli_u16(&cmd, &opts[4], &cfg.port) || cli_uint(&cmd, &opts[5], 1, 86400, &hb) ||
        cli_uint(&cmd, &opts[6], 1024, 1u << 30, &max_frame))
        return CLI_USAGE;
    cfg.heartbeat_timeout_ms = hb * 1000;
    cfg.max_frame = max_frame;
    return kproxy_run(&cfg);
}

int main(int argc, char **argv)
{
    log_init();
    raise_fd_limit();
    if (argc < 2) {
        print_main_help();
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0) {
        print_main_help();
        return 0;
    }
    if (strcmp(c, "-V") == 0 || strcmp(c, "--version") == 0) {
        printf("bore %s\n", BORE_VERSION);
        return 0;
    }
    if (strcmp(c, "help") == 0) {
        if (argc < 3) {
            print_main_help();
            return 0;
        }
        char flag[] = "--help";
        char *help[] = {flag};
        if (strcmp(argv[2], "local") == 0) return cmd_local(1, help);
        if (strcmp(argv[2], "server") == 0) return cmd_server(1, help);
        if (strcmp(argv[2], "kafka-proxy") == 0) return cmd_kafka_proxy(1, help);
        return unknown_command(argv[2]);
    }
    if (strcmp(c, "local") == 0) return cmd_local(argc - 2, argv + 2);
    if (strcmp(c, "server") == 0) return cmd_server(argc - 2, argv + 2);
    if (strcmp(c, "kafka-proxy") == 0) return cmd_kafka_proxy(argc - 2, argv + 2);
    return unknown_command(c);
}
