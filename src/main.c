/* main.c - `bore <COMMAND>`: parses the command line and hands a config to
 * the server or client module.
 *
 * Exit status, every command: 0 for a requested stop (SIGINT, SIGTERM) and
 * for --help/--version; 1 for an error: a client that cannot start, gives up
 * reconnecting (--reconnect-attempts) or, with --no-reconnect, loses its
 * tunnel (a supervisor restarting on failure restarts it); 2 for a usage
 * error (as upstream's clap). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "kmap.h"
#include "kproxy.h"
#include "ksasl.h"
#include "local.h"
#include "log.h"
#include "net.h"
#include "resolve.h"
#include "server.h"
#include "status.h"
#include "tui.h"
#include "tlsca.h"
#include "version.h"

#define LOG_TARGET "bore"
#define CONTROL_PORT 7835 /* upstream's, the default of --to HOST[:PORT] and --control-port */
#define HOST_CAP 256

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
           "  -V, --version  Print version\n\n"
           "Exit status: 0 when stopped by SIGINT (Ctrl-C) or SIGTERM; 1 on an error (a client\n"
           "reconnects when its tunnel is lost, unless --no-reconnect); 2 on a usage error.\n");
}

static int unknown_command(const char *arg)
{
    static const char *const commands[] = {"local", "server", "kafka-proxy", "help"};
    const char *tip = cli_suggest(arg, strlen(arg), commands, sizeof commands / sizeof commands[0]);
    fprintf(stderr, "error: unrecognized subcommand '%s'", arg);
    if (tip != NULL) fprintf(stderr, "\n\n  tip: a similar subcommand exists: '%s'", tip);
    fputs("\n\nUsage: bore <COMMAND>\n\nFor more information, try '--help'.\n", stderr);
    return CLI_USAGE;
}

#define SECRET_HELP "Optional secret for authentication (visible in ps: prefer BORE_SECRET or --secret-file)"
#define SECRET_FILE_HELP "Read the secret from a file (a trailing newline is removed)"
#define SECRET_MAX 4096

/* --secret-file: the file's content, less one trailing newline, becomes the
 * secret (in `buf`, which the caller cleanses). A --secret on the command
 * line conflicts with it; BORE_SECRET from the environment gives way. A
 * file other users can read is used, with a warning. */
static int load_secret(const cli_cmd_t *cmd, cli_opt_t *secret, const cli_opt_t *file, char *buf,
                       size_t cap)
{
    if (file->value == NULL) return 0;
    if (secret->given)
        return cli_usage_error(cmd, "the argument '--secret <SECRET>' cannot be used with "
                                    "'--secret-file <PATH>'");
    FILE *f = fopen(file->value, "r");
    if (f == NULL)
        return cli_usage_error(cmd, "invalid value '%s' for '--secret-file <PATH>': %s", file->value,
                               strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("the secret file %s is readable by every user of this machine (chmod 600 it)",
                 file->value);
    size_t n = fread(buf, 1, cap, f);
    int err = ferror(f);
    fclose(f);
    if (err || n == cap || memchr(buf, '\0', n) != NULL) {
        OPENSSL_cleanse(buf, cap);
        return cli_usage_error(cmd, "invalid value '%s' for '--secret-file <PATH>': %s", file->value,
                               err ? "cannot read it" : "not a text file of under 4 KiB");
    }
    if (n > 0 && buf[n - 1] == '\n') n--;
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    secret->value = buf;
    return 0;
}

#define METRICS_HELP "Serve Prometheus metrics at /metrics, /healthz, /status (JSON) and a status page at / on [ADDR:]PORT (a bare PORT binds to 127.0.0.1)"

/* --metrics [ADDR:]PORT into ip/port (ip stays "" when not given). */
static int parse_metrics(const cli_cmd_t *cmd, const cli_opt_t *o, char *ip, size_t cap,
                         uint16_t *port)
{
    ip[0] = '\0';
    if (o->value == NULL) return 0;
    if (status_parse_addr(o->value, ip, cap, port) != 0)
        return cli_usage_error(cmd, "invalid value '%s' for '--metrics <[ADDR:]PORT>': expected PORT, "
                                    "IP:PORT or [IPv6]:PORT", o->value);
    status_enable();
    return 0;
}

/* --to HOST[:PORT]: the port is the server's control port. */
static int parse_to(const cli_cmd_t *cmd, const cli_opt_t *to, char *host, size_t cap, uint16_t *port)
{
    if (resolve_split(to->value, host, cap, port, CONTROL_PORT) != 0)
        return cli_usage_error(cmd, "invalid value '%s' for '--to <TO>': expected HOST or HOST:PORT",
                               to->value);
    return 0;
}

#define RECONNECT_OPTS                                                                             \
    {0, "reconnect-attempts", "N", "BORE_RECONNECT_ATTEMPTS", "0",                                 \
     "Once connected, give up after N failed attempts to reconnect (0: never give up)", 0, NULL,  \
     0},                                                                                           \
        {0, "no-reconnect", NULL, NULL, NULL,                                                      \
         "Exit when the connection to the server is lost, instead of reconnecting", 0, NULL, 0},   \
        {0, "reclaim-timeout", "SECONDS", "BORE_RECLAIM_TIMEOUT", "60",                            \
         "On reconnect, ask this long for the old port while the server says it is in use, then "  \
         "take a new one",                                                                         \
         0, NULL, 0}

/* The three RECONNECT_OPTS, from opts[i]. */
static int parse_reconnect(const cli_cmd_t *cmd, cli_opt_t *o, int *reconnect, unsigned *attempts,
                           unsigned *reclaim_ms)
{
    unsigned secs;
    if (cli_uint(cmd, &o[0], 0, 1000000000, attempts) || cli_uint(cmd, &o[2], 1, 86400, &secs))
        return CLI_USAGE;
    *reconnect = !o[1].given;
    *reclaim_ms = secs * 1000;
    return 0;
}

static int cmd_local(int argc, char **argv)
{
    cli_opt_t opts[] = {
        {0, NULL, "LOCAL_PORT", "BORE_LOCAL_PORT", NULL, "The local port to expose", 1, NULL, 0},
        {'l', "local-host", "HOST", NULL, "localhost", "The local host to expose", 0, NULL, 0},
        {'t', "to", "TO", "BORE_SERVER", NULL,
         "Address of the remote server, HOST[:PORT] (PORT: its control port, 7835 by default)", 1,
         NULL, 0},
        {'p', "port", "PORT", NULL, "0", "Optional port on the remote server to select", 0, NULL, 0},
        {'s', "secret", "SECRET", "BORE_SECRET", NULL, SECRET_HELP, 0, NULL, 0},
        {0, "secret-file", "PATH", NULL, NULL, SECRET_FILE_HELP, 0, NULL, 0},
        {0, "heartbeat-timeout", "SECONDS", "BORE_HEARTBEAT_TIMEOUT", "15",
         "Reconnect when the server has sent nothing for this long", 0, NULL, 0},
        RECONNECT_OPTS,
        {0, "metrics", "[ADDR:]PORT", "BORE_METRICS", NULL, METRICS_HELP, 0, NULL, 0},
    };
    cli_cmd_t cmd = {"local", "Starts a local proxy to the remote server", opts,
                     sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_OK) return rc == CLI_EXIT_OK ? 0 : rc;

    char to[HOST_CAP], secret[SECRET_MAX], mip[64];
    local_config_t cfg = {.local_host = opts[1].value, .to_host = to};
    unsigned hb, local_port;
    if (cli_uint(&cmd, &opts[0], 1, 65535, &local_port) ||
        parse_to(&cmd, &opts[2], to, sizeof to, &cfg.to_port) ||
        cli_u16(&cmd, &opts[3], &cfg.port) || cli_uint(&cmd, &opts[6], 1, 86400, &hb) ||
        parse_reconnect(&cmd, &opts[7], &cfg.reconnect, &cfg.reconnect_attempts, &cfg.reclaim_ms) ||
        load_secret(&cmd, &opts[4], &opts[5], secret, sizeof secret) ||
        parse_metrics(&cmd, &opts[10], mip, sizeof mip, &cfg.metrics_port))
        return CLI_USAGE;
    if (mip[0]) cfg.metrics_ip = mip;
    cfg.local_port = (uint16_t)local_port;
    cfg.secret = opts[4].value;
    cfg.heartbeat_timeout_ms = hb * 1000;
    rc = local_run(&cfg);
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}

/* --bind-addr and --bind-tunnels are bound as given: an IP address. */
static int check_ip(const cli_cmd_t *cmd, const cli_opt_t *o)
{
    struct sockaddr_storage sa;
    if (o->value == NULL || net_parse_ip(o->value, 0, &sa) == 0) return 0;
    return cli_usage_error(cmd, "invalid value '%s' for '--%s <%s>': an IP address is required "
                                "(such as 0.0.0.0, 127.0.0.1 or ::), not a host name",
                           o->value, o->long_name, o->value_name);
}

static int cmd_server(int argc, char **argv)
{
    cli_opt_t opts[] = {
        {0, "min-port", "MIN_PORT", "BORE_MIN_PORT", "1024", "Minimum accepted TCP port number", 0,
         NULL, 0},
        {0, "max-port", "MAX_PORT", "BORE_MAX_PORT", "65535", "Maximum accepted TCP port number", 0,
         NULL, 0},
        {'s', "secret", "SECRET", "BORE_SECRET", NULL, SECRET_HELP, 0, NULL, 0},
        {0, "secret-file", "PATH", NULL, NULL, SECRET_FILE_HELP, 0, NULL, 0},
        {0, "bind-addr", "BIND_ADDR", NULL, "0.0.0.0",
         "IP address to bind to, clients must reach this", 0, NULL, 0},
        {0, "control-port", "PORT", "BORE_CONTROL_PORT", "7835",
         "Port of the control connection, clients give it as --to HOST:PORT", 0, NULL, 0},
        {0, "bind-tunnels", "BIND_TUNNELS", NULL, NULL,
         "IP address where tunnels will listen on, defaults to --bind-addr (clients are not told "
         "it: they print the address they dialled)",
         0, NULL, 0},
        {0, "max-handshakes", "N", "BORE_MAX_HANDSHAKES", "1024",
         "Connections allowed in handshake (unauthenticated) at once", 0, NULL, 0},
        {0, "max-handshakes-per-source", "N", "BORE_MAX_HANDSHAKES_PER_SOURCE", "128",
         "Handshakes one address (IPv6: one /64) may hold once half of them are taken", 0, NULL, 0},
        {0, "max-tunnels", "N", "BORE_MAX_TUNNELS", "1024", "Tunnels allowed at once", 0, NULL, 0},
        {0, "max-pending", "N", "BORE_MAX_PENDING", "8192",
         "Visitors waiting to be accepted, over all tunnels", 0, NULL, 0},
        {0, "max-pending-per-tunnel", "N", "BORE_MAX_PENDING_PER_TUNNEL", "1024",
         "Visitors waiting to be accepted, per tunnel", 0, NULL, 0},
        {0, "max-relays", "N", "BORE_MAX_RELAYS", "8192",
         "Visitor connections relayed at once, over all tunnels", 0, NULL, 0},
        {0, "max-relays-per-tunnel", "N", "BORE_MAX_RELAYS_PER_TUNNEL", "2048",
         "Visitor connections relayed at once, per tunnel", 0, NULL, 0},
        {0, "max-relay-memory", "MIB", "BORE_MAX_RELAY_MEMORY", "256",
         "Buffer memory all relays may hold, in MiB, beyond 8 KiB each", 0, NULL, 0},
        {0, "metrics", "[ADDR:]PORT", "BORE_METRICS", NULL, METRICS_HELP, 0, NULL, 0},
        {0, "grace", "SECONDS", "BORE_GRACE", "30",
         "Keep a tunnel's port this long after its control connection ends, for its client to "
         "take back (0: free it at once)",
         0, NULL, 0},
    };
    cli_cmd_t cmd = {"server", "Runs the remote proxy server", opts, sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_OK) return rc == CLI_EXIT_OK ? 0 : rc;

    char secret[SECRET_MAX], mip[64];
    server_config_t cfg = {.bind_addr = opts[4].value};
    cfg.bind_tunnels = opts[6].value ? opts[6].value : cfg.bind_addr;
    unsigned control_port, grace;
    if (cli_u16(&cmd, &opts[0], &cfg.min_port) || cli_u16(&cmd, &opts[1], &cfg.max_port) ||
        check_ip(&cmd, &opts[4]) || cli_uint(&cmd, &opts[5], 1, 65535, &control_port) ||
        check_ip(&cmd, &opts[6]) || cli_uint(&cmd, &opts[7], 1, 1000000, &cfg.max_handshakes) ||
        cli_uint(&cmd, &opts[8], 1, 1000000, &cfg.max_handshakes_per_source) ||
        cli_uint(&cmd, &opts[9], 1, 1000000, &cfg.max_tunnels) ||
        cli_uint(&cmd, &opts[10], 1, 1000000, &cfg.max_pending) ||
        cli_uint(&cmd, &opts[11], 1, 1000000, &cfg.max_pending_per_tunnel) ||
        cli_uint(&cmd, &opts[12], 1, 1000000, &cfg.max_relays) ||
        cli_uint(&cmd, &opts[13], 1, 1000000, &cfg.max_relays_per_tunnel) ||
        cli_uint(&cmd, &opts[14], 1, 1u << 20, &cfg.max_relay_memory_mib) ||
        parse_metrics(&cmd, &opts[15], mip, sizeof mip, &cfg.metrics_port) ||
        cli_uint(&cmd, &opts[16], 0, 86400, &grace))
        return CLI_USAGE;
    if (mip[0]) cfg.metrics_ip = mip;
    cfg.grace_ms = grace * 1000;
    cfg.control_port = (uint16_t)control_port;
    if (cfg.min_port > cfg.max_port) {
        fprintf(stderr, "error: port range is empty\n");
        return CLI_USAGE;
    }
    if (load_secret(&cmd, &opts[2], &opts[3], secret, sizeof secret)) return CLI_USAGE;
    cfg.secret = opts[2].value;
    rc = server_run(&cfg);
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
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

#define AUTH_USERS_MAX 64
#define PASSWORD_MAX 1024

/* --add-user: the password from the terminal with echo off, or the first
 * line of stdin when it is not a terminal. Only the salted credentials are
 * written. */
static int add_user(const char *file, const char *user)
{
    if (file == NULL) {
        fprintf(stderr, "error: --add-user needs --auth-file FILE\n");
        return CLI_USAGE;
    }
    if (!ksasl_valid_user(user, strlen(user))) {
        fprintf(stderr, "error: invalid user name '%s' (1-255 printable bytes, no space, ':' or '#')\n",
                user);
        return CLI_USAGE;
    }
    char pw[PASSWORD_MAX + 2];
    int tty = isatty(STDIN_FILENO), echo_off = 0;
    struct termios old, quiet;
    if (tty) {
        /* Echo off first, then the prompt: what is typed after the prompt
         * is never flushed away. */
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            echo_off = 1;
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        fprintf(stderr, "Password for %s: ", user);
        fflush(stderr);
    }
    char *got = fgets(pw, sizeof pw, stdin);
    if (echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (tty) fputc('\n', stderr);
    size_t n = got ? strlen(pw) : 0;
    if (n > 0 && pw[n - 1] == '\n') n--;
    if (n > 0 && pw[n - 1] == '\r') n--;
    if (got == NULL || n == 0 || n > PASSWORD_MAX) {
        OPENSSL_cleanse(pw, sizeof pw);
        fprintf(stderr, "Error: no password given (one line, 1-%d bytes)\n", PASSWORD_MAX);
        return 1;
    }
    ksasl_user_t u;
    char err[512];
    int rc = ksasl_user_derive(&u, user, pw, n, KSASL_ITER_DEFAULT);
    OPENSSL_cleanse(pw, sizeof pw);
    if (rc != 0 || ksasl_file_put(file, &u, err, sizeof err) != 0) {
        OPENSSL_cleanse(&u, sizeof u);
        fprintf(stderr, "Error: %s\n", rc != 0 ? "cannot derive the credentials" : err);
        return 1;
    }
    OPENSSL_cleanse(&u, sizeof u);
    printf("user %s saved in %s (salted SCRAM-SHA-256 and SCRAM-SHA-512 credentials)\n", user, file);
    return 0;
}

/* --auth-user and --auth-file into the store. 0, or CLI_USAGE / 1. */
static int load_auth(const cli_cmd_t *cmd, const char *const *users, size_t n_users, const char *file,
                     ksasl_store_t *st)
{
    if (ksasl_store_init(st) != 0) {
        fprintf(stderr, "Error: the random number generator failed\n");
        return 1;
    }
    for (size_t i = 0; i < n_users; i++) {
        const char *colon = strchr(users[i], ':');
        char name[KSASL_USER_MAX + 1];
        if (colon == NULL || !ksasl_valid_user(users[i], (size_t)(colon - users[i])))
            return cli_usage_error(cmd, "invalid value for '--auth-user <USER:PASSWORD>': expected "
                                        "USER:PASSWORD (USER without space, ':' or '#')");
        memcpy(name, users[i], (size_t)(colon - users[i]));
        name[colon - users[i]] = '\0';
        ksasl_user_t u;
        int rc = ksasl_user_derive(&u, name, colon + 1, strlen(colon + 1), KSASL_ITER_DEFAULT);
        if (rc == 0) rc = ksasl_store_put(st, &u);
        OPENSSL_cleanse(&u, sizeof u);
        if (rc != 0) {
            fprintf(stderr, "Error: cannot derive the credentials of %s\n", name);
            return 1;
        }
    }
    char err[512];
    if (file != NULL && ksasl_store_load(st, file, err, sizeof err) != 0) {
        fprintf(stderr, "Error: --auth-file %s\n", err);
        return 1;
    }
    if (st->n == 0) {
        fprintf(stderr, "Error: the authentication gate has no users (--auth-file %s is empty; add "
                        "one with: bore kafka-proxy --auth-file %s --add-user USER)\n",
                file, file);
        return 1;
    }
    return 0;
}

static int cmd_kafka_proxy(int argc, char **argv)
{
    enum {
        KP_BOOTSTRAP,
        KP_TO,
        KP_SECRET,
        KP_SECRET_FILE,
        KP_ADVERTISED_HOST,
        KP_PORT,
        KP_HEARTBEAT,
        KP_MAX_FRAME,
        KP_MAP,
        KP_STRICT,
        KP_CHECK,
        KP_STATE_DIR,
        KP_AUTH_USER,
        KP_AUTH_FILE,
        KP_ADD_USER,
        KP_ALLOW_PLAIN,
        KP_AUTH_DEADLINE,
        KP_METRICS,
        KP_NO_TUI,
        KP_TLS,
        KP_TLS_CERT,
        KP_TLS_KEY,
        KP_TLS_CLIENT_CA,
        KP_TLS_HANDSHAKE,
        KP_PRINT_CA,
        KP_BROKER_TLS,
        KP_BROKER_CA,
        KP_BROKER_CERT,
        KP_BROKER_KEY,
        KP_RECONNECT_ATTEMPTS, /* the three RECONNECT_OPTS, in order */
        KP_NO_RECONNECT,
        KP_RECLAIM_TIMEOUT,
        KP_N_OPTS
    };
    cli_opt_t opts[KP_N_OPTS] = {
        [KP_BOOTSTRAP] = {'b', "bootstrap-server", "HOST:PORT", NULL, "localhost:9092",
         "Any broker of the Kafka cluster to expose", 0, NULL, 0},
        [KP_TO] = {'t', "to", "TO", "BORE_SERVER", "bore.pub",
         "Address of the remote server, HOST[:PORT] (PORT: its control port, 7835 by default)", 0,
         NULL, 0},
        [KP_SECRET] = {'s', "secret", "SECRET", "BORE_SECRET", NULL, SECRET_HELP, 0, NULL, 0},
        [KP_SECRET_FILE] = {0, "secret-file", "PATH", NULL, NULL, SECRET_FILE_HELP, 0, NULL, 0},
        [KP_ADVERTISED_HOST] = {0, "advertised-host", "HOST", NULL, NULL,
         "Host name clients use to reach the remote server [default: the --to host]", 0, NULL, 0},
        [KP_PORT] = {'p', "port", "PORT", NULL, "0", "Public port of the bootstrap address (0: any)", 0, NULL, 0},
        [KP_HEARTBEAT] = {0, "heartbeat-timeout", "SECONDS", "BORE_HEARTBEAT_TIMEOUT", "15",
         "Reconnect when the server has sent nothing for this long", 0, NULL, 0},
        [KP_MAX_FRAME] = {0, "max-frame-size", "BYTES", NULL, "104857600",
         "Largest Kafka response the proxy buffers to rewrite", 0, NULL, 0},
        [KP_MAP] = {0, "map", "ADVERTISED_HOST:PORT=HOST:PORT", NULL, NULL,
         "Dial a broker that advertises an address unreachable from here at HOST:PORT; also "
         "NODE_ID=HOST:PORT (repeatable)",
         0, NULL, 0},
        [KP_STRICT] = {0, "strict", NULL, NULL, NULL,
         "Do not start when the pre-flight finds a broker this machine cannot reach", 0, NULL, 0},
        [KP_CHECK] = {0, "check", NULL, NULL, NULL,
         "Only run the pre-flight (no server needed): exit 0 if every broker is reachable, 1 if not",
         0, NULL, 0},
        [KP_STATE_DIR] = {0, "state-dir", "DIR", "BORE_STATE_DIR", NULL,
         "Where bore keeps files between runs [default: $XDG_STATE_HOME/bore or "
         "~/.local/state/bore]",
         0, NULL, 0},
        [KP_AUTH_USER] = {0, "auth-user", "USER:PASSWORD", NULL, NULL,
         "Authentication gate: clients must authenticate with SASL (SCRAM-SHA-256, SCRAM-SHA-512, "
         "PLAIN) as this user before anything reaches the cluster (repeatable)",
         0, NULL, 0},
        [KP_AUTH_FILE] = {0, "auth-file", "FILE", NULL, NULL,
         "Authentication gate: the users in FILE (salted credentials, one user a line; see "
         "--add-user)",
         0, NULL, 0},
        [KP_ADD_USER] = {0, "add-user", "USER", NULL, NULL,
         "Add USER to --auth-file (password from the terminal, or one line on stdin) and exit", 0,
         NULL, 0},
        [KP_ALLOW_PLAIN] = {0, "allow-plain-without-tls", NULL, NULL, NULL,
         "Offer SASL PLAIN on plaintext ports, accepting that the relay can read passwords", 0,
         NULL, 0},
        [KP_AUTH_DEADLINE] = {0, "auth-deadline", "SECONDS", NULL, "10",
         "Close a connection that has not authenticated within this time", 0, NULL, 0},
        [KP_METRICS] = {0, "metrics", "[ADDR:]PORT", "BORE_METRICS", NULL, METRICS_HELP, 0, NULL, 0},
        [KP_NO_TUI] = {0, "no-tui", NULL, NULL, NULL,
         "Print log lines instead of the live broker table when stdout is a terminal", 0, NULL, 0},
        [KP_TLS] = {0, "tls", NULL, NULL, NULL,
         "Every public port speaks TLS, with a certificate from a CA kept in the state directory "
         "(or --tls-cert)",
         0, NULL, 0},
        [KP_TLS_CERT] = {0, "tls-cert", "FILE", NULL, NULL,
         "With --tls: your certificate (PEM, the chain after it) instead of the generated one", 0,
         NULL, 0},
        [KP_TLS_KEY] = {0, "tls-key", "FILE", NULL, NULL, "The private key of --tls-cert (PEM)", 0, NULL, 0},
        [KP_TLS_CLIENT_CA] = {0, "tls-client-ca", "FILE", NULL, NULL,
         "With --tls: require a client certificate signed by this CA (PEM)", 0, NULL, 0},
        [KP_TLS_HANDSHAKE] = {0, "tls-handshake-timeout", "SECONDS", NULL, "10",
         "Close a client that has not finished its TLS handshake by then", 0, NULL, 0},
        [KP_PRINT_CA] = {0, "print-ca", NULL, NULL, NULL,
         "Print the generated CA certificate (PEM), which clients trust, and exit", 0, NULL, 0},
        [KP_BROKER_TLS] = {0, "broker-tls", NULL, NULL, NULL,
         "Connect to the brokers with TLS (their listeners are SSL), verifying each broker's "
         "advertised host",
         0, NULL, 0},
        [KP_BROKER_CA] = {0, "broker-ca", "FILE", NULL, NULL,
         "With --broker-tls: the CA of the brokers' certificates (PEM) [default: the system's]", 0,
         NULL, 0},
        [KP_BROKER_CERT] = {0, "broker-cert", "FILE", NULL, NULL,
         "With --broker-tls: a client certificate (PEM) for brokers that require one", 0, NULL, 0},
        [KP_BROKER_KEY] = {0, "broker-key", "FILE", NULL, NULL, "The private key of --broker-cert (PEM)", 0, NULL, 0},
        [KP_RECONNECT_ATTEMPTS] = RECONNECT_OPTS,
    };
    cli_cmd_t cmd = {"kafka-proxy",
                     "Exposes every broker of a Kafka cluster through the remote server", opts,
                     sizeof opts / sizeof opts[0]};
    const char *map_values[KMAP_MAX];
    const char *auth_values[AUTH_USERS_MAX];
    cli_multi_t multis[2] = {{"map", map_values, KMAP_MAX, 0},
                             {"auth-user", auth_values, AUTH_USERS_MAX, 0}};
    int rc = cli_parse_multi(&cmd, argc, argv, multis, 2);
    if (rc != CLI_OK) return rc == CLI_EXIT_OK ? 0 : rc;
    const cli_multi_t multi = multis[0];
    if (opts[KP_ADD_USER].value)
        return add_user(opts[KP_AUTH_FILE].value, opts[KP_ADD_USER].value);
    kmap_t maps = {NULL, 0};
    for (size_t i = 0; i < multi.n; i++) {
        char why[160];
        if (kmap_add(&maps, map_values[i], why, sizeof why) != 0) {
            kmap_free(&maps);
            return cli_usage_error(&cmd, "invalid value '%s' for '--map <%s>': %s", map_values[i],
                                   opts[KP_MAP].value_name, why);
        }
    }
    char bootstrap[HOST_CAP], to[HOST_CAP], secret[SECRET_MAX], mip[64];
    kproxy_config_t cfg = {.bootstrap_host = bootstrap, .to_host = to,
                           .advertised_host = opts[KP_ADVERTISED_HOST].value, .maps = &maps,
                           .strict = opts[KP_STRICT].given, .check_only = opts[KP_CHECK].given,
                           .state_dir = opts[KP_STATE_DIR].value};
    if (resolve_split(opts[KP_BOOTSTRAP].value, bootstrap, sizeof bootstrap, &cfg.bootstrap_port,
                      9092) != 0) {
        kmap_free(&maps);
        return cli_usage_error(&cmd,
                               "invalid value '%s' for '--bootstrap-server <HOST:PORT>': expected "
                               "HOST or HOST:PORT",
                               opts[KP_BOOTSTRAP].value);
    }
    unsigned hb, max_frame, deadline;
    if (parse_to(&cmd, &opts[KP_TO], to, sizeof to, &cfg.to_port) ||
        cli_u16(&cmd, &opts[KP_PORT], &cfg.port) ||
        cli_uint(&cmd, &opts[KP_HEARTBEAT], 1, 86400, &hb) ||
        cli_uint(&cmd, &opts[KP_AUTH_DEADLINE], 1, 3600, &deadline) ||
        cli_uint(&cmd, &opts[KP_MAX_FRAME], 1024, 1u << 30, &max_frame) ||
        parse_reconnect(&cmd, &opts[KP_RECONNECT_ATTEMPTS], &cfg.reconnect,
                        &cfg.reconnect_attempts, &cfg.reclaim_ms) ||
        load_secret(&cmd, &opts[KP_SECRET], &opts[KP_SECRET_FILE], secret, sizeof secret) ||
        parse_metrics(&cmd, &opts[KP_METRICS], mip, sizeof mip, &cfg.metrics_port)) {
        kmap_free(&maps);
        return CLI_USAGE;
    }
    if (mip[0]) cfg.metrics_ip = mip;
    cfg.tui = !opts[KP_NO_TUI].given && !cfg.check_only && tui_wanted();
    if (opts[KP_PRINT_CA].given) {
        kmap_free(&maps);
        return tlsca_print(opts[KP_STATE_DIR].value);
    }
    unsigned tls_hs;
    if (cli_uint(&cmd, &opts[KP_TLS_HANDSHAKE], 1, 3600, &tls_hs)) {
        kmap_free(&maps);
        return CLI_USAGE;
    }
    cfg.tls = opts[KP_TLS].given || opts[KP_TLS_CERT].value || opts[KP_TLS_CLIENT_CA].value;
    cfg.tls_cert = opts[KP_TLS_CERT].value;
    cfg.tls_key = opts[KP_TLS_KEY].value;
    cfg.tls_client_ca = opts[KP_TLS_CLIENT_CA].value;
    cfg.tls_handshake_ms = tls_hs * 1000;
    cfg.broker_tls = opts[KP_BROKER_TLS].given || opts[KP_BROKER_CA].value || opts[KP_BROKER_CERT].value;
    cfg.broker_ca = opts[KP_BROKER_CA].value;
    cfg.broker_cert = opts[KP_BROKER_CERT].value;
    cfg.broker_key = opts[KP_BROKER_KEY].value;
    if ((cfg.broker_cert == NULL) != (cfg.broker_key == NULL)) {
        kmap_free(&maps);
        return cli_usage_error(&cmd, "--broker-cert and --broker-key go together");
    }
    if ((cfg.tls_cert == NULL) != (cfg.tls_key == NULL)) {
        kmap_free(&maps);
        return cli_usage_error(&cmd, "--tls-cert and --tls-key go together");
    }
    if (cfg.advertised_host == NULL) cfg.advertised_host = to;
    cfg.secret = opts[KP_SECRET].value;
    cfg.heartbeat_timeout_ms = hb * 1000;
    cfg.max_frame = max_frame;
    ksasl_store_t store;
    int gate = multis[1].n > 0 || opts[KP_AUTH_FILE].value != NULL;
    if (gate) {
        rc = load_auth(&cmd, auth_values, multis[1].n, opts[KP_AUTH_FILE].value, &store);
        if (rc != 0) {
            ksasl_store_free(&store);
            OPENSSL_cleanse(secret, sizeof secret);
            kmap_free(&maps);
            return rc;
        }
        cfg.auth = &store;
        cfg.auth_deadline_ms = deadline * 1000;
        cfg.auth_plain = cfg.tls || opts[KP_ALLOW_PLAIN].given;
    }
    rc = kproxy_run(&cfg);
    if (gate) ksasl_store_free(&store);
    OPENSSL_cleanse(secret, sizeof secret);
    kmap_free(&maps);
    return rc;
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
