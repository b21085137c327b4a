/* kafka_cluster.c - a multi-broker Kafka cluster for tests: librdkafka
 * 2.15.1's mock cluster, driven by commands on stdin.
 *
 *   kafka_cluster [--brokers N] [--address IP] [--topic NAME:PARTITIONS]...
 *
 * Every output line is one JSON object on stdout. At start, and for the
 * `brokers` command, the cluster as a real client sees it (a Metadata
 * request from a librdkafka handle):
 *
 *   {"bootstrap":"127.0.0.1:40001,...","brokers":[{"id":1,"host":"127.0.0.1","port":40001},...]}
 *
 * Commands, one per line; each answers {"ok":"<command>"} or {"error":"..."}:
 *
 *   brokers                              print the cluster (as above)
 *   topic NAME PARTITIONS [RF]           create a topic; leaders spread over brokers
 *   add ID                               add a broker
 *   decommission ID                      remove a broker
 *   host ID HOST PORT                    change a broker's advertised host/port
 *   down ID | up ID                      take a broker down / bring it back
 *   leader TOPIC PARTITION ID            move a partition's leader
 *   coordinator group|transaction KEY ID pin a coordinator
 *   apiversion KEY MIN MAX               cap the versions of an API key
 *   quit                                 exit (as do EOF and SIGTERM)
 *
 * The mock binds its brokers to 127.0.0.1; with --address the launcher's own
 * bind() puts them on that address instead (librdkafka calls bind through
 * the PLT, and an executable's symbol comes first). */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct in_addr bind_addr;
static int have_bind_addr;

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    struct sockaddr_in sin;
    if (have_bind_addr && sa->sa_family == AF_INET && len >= sizeof sin) {
        memcpy(&sin, sa, sizeof sin);
        if (sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            sin.sin_addr = bind_addr;
            return (int)syscall(SYS_bind, fd, (const struct sockaddr *)&sin, sizeof sin);
        }
    }
    return (int)syscall(SYS_bind, fd, sa, len);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static rd_kafka_mock_cluster_t *mc;
static rd_kafka_t *client; /* a plain client, to see the cluster as clients do */

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(j);
}

static void reply_error(const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    print_json(json_pack("{s:s}", "error", msg));
}

static void print_brokers(void)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(client, 0, NULL, &md, 5000);
    if (err) {
        reply_error("metadata: %s", rd_kafka_err2str(err));
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < md->broker_cnt; i++)
        json_array_append_new(list, json_pack("{s:i,s:s,s:i}", "id", md->brokers[i].id, "host",
                                              md->brokers[i].host, "port", md->brokers[i].port));
    print_json(json_pack("{s:s,s:o}", "bootstrap", rd_kafka_mock_cluster_bootstraps(mc), "brokers",
                         list));
    rd_kafka_metadata_destroy(md);
}

static int broker_ids(int32_t *ids, int max)
{
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(client, 0, NULL, &md, 5000)) return 0;
    int n = md->broker_cnt < max ? md->broker_cnt : max;
    for (int i = 0; i < n; i++) ids[i] = md->brokers[i].id;
    rd_kafka_metadata_destroy(md);
    return n;
}

static int create_topic(const char *name, int partitions, int rf)
{
    if (rd_kafka_mock_topic_create(mc, name, partitions, rf)) return -1;
    int32_t ids[64];
    int n = broker_ids(ids, 64);
    for (int p = 0; p < partitions && n > 0; p++)
        if (rd_kafka_mock_partition_set_leader(mc, name, p, ids[p % n])) return -1;
    return 0;
}

/* Parses a whole decimal int; -1 on junk. */
static int num(const char *s, long *out)
{
    if (s == NULL || *s == '\0') return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static void command(char *line)
{
    char *argv[8];
    int argc = 0;
    for (char *t = strtok(line, " \t\r\n"); t && argc < 8; t = strtok(NULL, " \t\r\n")) argv[argc++] = t;
    if (argc == 0) return;
    const char *c = argv[0];
    long a = 0, b = 0, d = 0;
    rd_kafka_resp_err_t err = 0;

    if (strcmp(c, "brokers") == 0 && argc == 1) {
        print_brokers();
        return;
    } else if (strcmp(c, "topic") == 0 && (argc == 3 || argc == 4) && num(argv[2], &a) == 0 &&
               a > 0 && (argc == 3 || (num(argv[3], &b) == 0 && b > 0))) {
        if (create_topic(argv[1], (int)a, argc == 4 ? (int)b : 1)) err = RD_KAFKA_RESP_ERR__FAIL;
    } else if (strcmp(c, "add") == 0 && argc == 2 && num(argv[1], &a) == 0) {
        err = rd_kafka_mock_broker_add(mc, (int32_t)a);
    } else if (strcmp(c, "decommission") == 0 && argc == 2 && num(argv[1], &a) == 0) {
        err = rd_kafka_mock_broker_decommission(mc, (int32_t)a);
    } else if (strcmp(c, "host") == 0 && argc == 4 && num(argv[1], &a) == 0 &&
               num(argv[3], &b) == 0 && b > 0 && b < 65536) {
        rd_kafka_mock_broker_set_host_port(mc, (int32_t)a, argv[2], (int)b);
    } else if ((strcmp(c, "down") == 0 || strcmp(c, "up") == 0) && argc == 2 &&
               num(argv[1], &a) == 0) {
        err = c[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)a)
                          : rd_kafka_mock_broker_set_up(mc, (int32_t)a);
    } else if (strcmp(c, "leader") == 0 && argc == 4 && num(argv[2], &a) == 0 &&
               num(argv[3], &b) == 0) {
        err = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)a, (int32_t)b);
    } else if (strcmp(c, "coordinator") == 0 && argc == 4 &&
               (strcmp(argv[1], "group") == 0 || strcmp(argv[1], "transaction") == 0) &&
               num(argv[3], &a) == 0) {
        err = rd_kafka_mock_coordinator_set(mc, argv[1], argv[2], (int32_t)a);
    } else if (strcmp(c, "apiversion") == 0 && argc == 4 && num(argv[1], &a) == 0 &&
               num(argv[2], &b) == 0 && num(argv[3], &d) == 0) {
        err = rd_kafka_mock_set_apiversion(mc, (int16_t)a, (int16_t)b, (int16_t)d);
    } else if (strcmp(c, "quit") == 0) {
        stop = 1;
    } else {
        reply_error("malformed command: %s (see the header of kafka_cluster.c)", c);
        return;
    }
    if (err)
        reply_error("%s", rd_kafka_err2str(err));
    else
        print_json(json_pack("{s:s}", "ok", c));
}

int main(int argc, char **argv)
{
    int brokers = 3;
    const char *topics[32];
    int ntopics = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--address") == 0 && i + 1 < argc) {
            if (inet_pton(AF_INET, argv[++i], &bind_addr) != 1) {
                fprintf(stderr, "kafka_cluster: bad --address %s\n", argv[i]);
                return 2;
            }
            have_bind_addr = 1;
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc && ntopics < 32) {
            topics[ntopics++] = argv[++i];
        } else {
            fprintf(stderr, "usage: kafka_cluster [--brokers N] [--address IP] [--topic NAME:PARTITIONS]...\n");
            return 2;
        }
    }
    if (brokers < 1 || brokers > 64) {
        fprintf(stderr, "kafka_cluster: --brokers must be 1-64\n");
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: fgets returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (owner == NULL) {
        fprintf(stderr, "kafka_cluster: %s\n", errstr);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(owner, brokers);
    if (mc == NULL) {
        fprintf(stderr, "kafka_cluster: cannot create the mock cluster\n");
        rd_kafka_destroy(owner);
        return 1;
    }
    rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 0);
    /* The mock reports controller 0, which is no broker; kafkajs looks the
     * controller up among the brokers (InitProducerId), so name a real one. */
    rd_kafka_mock_set_controller_id(mc, 1);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (client == NULL) {
        fprintf(stderr, "kafka_cluster: %s\n", errstr);
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        char name[256];
        int parts = 1;
        if (sscanf(topics[i], "%255[^:]:%d", name, &parts) < 1 || parts < 1 ||
            create_topic(name, parts, brokers < 3 ? brokers : 3) != 0) {
            fprintf(stderr, "kafka_cluster: cannot create topic %s\n", topics[i]);
            return 1;
        }
    }
    print_brokers();

    char line[1024];
    while (!stop && fgets(line, sizeof line, stdin) != NULL) command(line);

    rd_kafka_destroy(client);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
    return 0;
}
