/* kmetrics.c - see kmetrics.h. */
#include "kmetrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char *const api_names[] = {
    "Produce", "Fetch", "ListOffsets", "Metadata", "LeaderAndIsr", "StopReplica", "UpdateMetadata",
    "ControlledShutdown", "OffsetCommit", "OffsetFetch", "FindCoordinator", "JoinGroup", "Heartbeat",
    "LeaveGroup", "SyncGroup", "DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions",
    "CreateTopics", "DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",
    "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers", "TxnOffsetCommit",
    "DescribeAcls", "CreateAcls", "DeleteAcls", "DescribeConfigs", "AlterConfigs",
    "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate", "CreatePartitions",
    "CreateDelegationToken", "RenewDelegationToken", "ExpireDelegationToken",
    "DescribeDelegationToken", "DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs",
    "AlterPartitionReassignments", "ListPartitionReassignments", "OffsetDelete",
    "DescribeClientQuotas", "AlterClientQuotas", "DescribeUserScramCredentials",
    "AlterUserScramCredentials", "Vote", "BeginQuorumEpoch", "EndQuorumEpoch", "DescribeQuorum",
    "AlterPartition", "UpdateFeatures", "Envelope", "FetchSnapshot", "DescribeCluster",
    "DescribeProducers", "BrokerRegistration", "BrokerHeartbeat", "UnregisterBroker",
    "DescribeTransactions", "ListTransactions", "AllocateProducerIds", "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe", "ControllerRegistration", "GetTelemetrySubscriptions", "PushTelemetry",
    "AssignReplicasToDirs", "ListClientMetricsResources", "DescribeTopicPartitions",
    "ShareGroupHeartbeat", "ShareGroupDescribe", "ShareFetch", "ShareAcknowledge",
};

/* Response times: 1 ms .. 30 s (Fetch long-polls wait up to fetch.max.wait.ms, 500 ms by default). */
static const uint64_t latency_us[] = {500,    1000,    2500,    5000,    10000,    25000,   50000,
                                      100000, 250000,  500000,  1000000, 2500000, 5000000, 10000000,
                                      30000000, 0};

static struct {
    metrics_family_t *bytes, *conns_total, *conns_active, *requests, *latency, *rewritten, *held,
        *reconnects, *port, *up;
} fam;

const char *kmetrics_api_name(int16_t key)
{
    if (key < 0 || (size_t)key >= sizeof api_names / sizeof api_names[0]) return NULL;
    return api_names[key];
}

void kmetrics_init(void)
{
    static const char *const node[] = {"node", NULL};
    static const char *const node_dir[] = {"node", "direction", NULL};
    static const char *const node_api_ver[] = {"node", "api", "api_key", "version", NULL};
    static const char *const node_api[] = {"node", "api", "api_key", NULL};
    if (!metrics_enabled() || fam.bytes) return;
    fam.up = metrics_family("bore_kafka_node_tunnel_up",
                            "1 while the node's tunnel listens on the server, 0 otherwise",
                            METRICS_GAUGE, node, NULL);
    fam.port = metrics_family("bore_kafka_node_public_port",
                              "The node's public port on the tunnel server (0 until it listens)",
                              METRICS_GAUGE, node, NULL);
    fam.conns_active = metrics_family("bore_kafka_node_connections",
                                      "Client connections open through the node's tunnel",
                                      METRICS_GAUGE, node, NULL);
    fam.conns_total = metrics_family("bore_kafka_node_connections_total",
                                     "Client connections made through the node's tunnel",
                                     METRICS_COUNTER, node, NULL);
    fam.bytes = metrics_family("bore_kafka_node_bytes_total",
                               "Bytes relayed, as they flow: in = client to broker, out = broker to "
                               "client (as the broker sent them, before rewriting)",
                               METRICS_COUNTER, node_dir, NULL);
    fam.requests = metrics_family("bore_kafka_requests_total",
                                  "Kafka requests seen, by API key and version", METRICS_COUNTER,
                                  node_api_ver, NULL);
    fam.latency = metrics_family("bore_kafka_response_seconds",
                                 "Time from a request being seen to its response being released "
                                 "to the client, by API key",
                                 METRICS_HISTOGRAM, node_api, latency_us);
    fam.rewritten = metrics_family("bore_kafka_responses_rewritten_total",
                                   "Responses whose broker addresses the proxy rewrote",
                                   METRICS_COUNTER, node, NULL);
    fam.held = metrics_family("bore_kafka_responses_held_total",
                              "Responses held until a newly seen broker's tunnel listened",
                              METRICS_COUNTER, node, NULL);
    fam.reconnects = metrics_family("bore_kafka_node_reconnects_total",
                                    "Times the node's tunnel was opened again after it ended",
                                    METRICS_COUNTER, node, NULL);
}

void kmetrics_node_init(kmetrics_node_t *m, int32_t id)
{
    memset(m, 0, sizeof *m);
    if (id < 0)
        snprintf(m->node, sizeof m->node, "bootstrap");
    else
        snprintf(m->node, sizeof m->node, "%d", id);
    if (!metrics_enabled()) return;
    const char *v[] = {m->node, NULL};
    m->s_up = metrics_series(fam.up, v);
    m->s_port = metrics_series(fam.port, v);
    m->s_conns_active = metrics_series(fam.conns_active, v);
    m->s_conns_total = metrics_counter_ref(fam.conns_total, v, &m->conns_total);
    m->s_bytes[0] = metrics_counter_ref(fam.bytes, (const char *const[]){m->node, "in"}, &m->bytes.bytes[0]);
    m->s_bytes[1] = metrics_counter_ref(fam.bytes, (const char *const[]){m->node, "out"}, &m->bytes.bytes[1]);
    m->s_rewritten = metrics_counter_ref(fam.rewritten, v, &m->rewritten);
    m->s_held = metrics_counter_ref(fam.held, v, &m->held);
    m->s_reconnects = metrics_counter_ref(fam.reconnects, v, &m->reconnects);
}

void kmetrics_node_free(kmetrics_node_t *m)
{
    metrics_series_t **all[] = {&m->s_up, &m->s_port, &m->s_conns_active, &m->s_conns_total,
                                &m->s_bytes[0], &m->s_bytes[1], &m->s_rewritten, &m->s_held,
                                &m->s_reconnects};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        metrics_remove(*all[i]);
        *all[i] = NULL;
    }
    for (size_t a = 0; a <= KMETRICS_API_MAX; a++) {
        if (m->req[a]) {
            for (size_t v = 0; v <= KMETRICS_VER_MAX; v++) metrics_remove(m->req[a][v]);
            free(m->req[a]);
            m->req[a] = NULL;
        }
        metrics_remove(m->lat[a]);
        m->lat[a] = NULL;
    }
}

void kmetrics_node_port(kmetrics_node_t *m, uint16_t port)
{
    metrics_set(m->s_port, port);
    metrics_set(m->s_up, port != 0);
}

void kmetrics_node_lost(kmetrics_node_t *m) { metrics_set(m->s_up, 0); }

void kmetrics_conn_open(kmetrics_node_t *m)
{
    m->conns_total++;
    m->conns_active++;
    metrics_set(m->s_conns_active, m->conns_active);
}

void kmetrics_conn_close(kmetrics_node_t *m)
{
    m->conns_active--;
    metrics_set(m->s_conns_active, m->conns_active);
}

void kmetrics_reconnect(kmetrics_node_t *m) { m->reconnects++; }
void kmetrics_held(kmetrics_node_t *m) { m->held++; }

static size_t api_index(int16_t key)
{
    return key >= 0 && key < KMETRICS_API_MAX ? (size_t)key : KMETRICS_API_MAX;
}

static void api_labels(int16_t key, char name[32], char num[16])
{
    const char *n = kmetrics_api_name(key);
    if (api_index(key) == KMETRICS_API_MAX) {
        snprintf(name, 32, "other");
        snprintf(num, 16, "other");
        return;
    }
    snprintf(name, 32, "%s", n ? n : "unknown");
    snprintf(num, 16, "%d", key);
}

static uint32_t now_us(void) { return (uint32_t)(uv_hrtime() / 1000); }

void kmetrics_request(kmetrics_node_t *m, kf_req_t *req)
{
    m->requests_total++;
    if (!metrics_enabled()) return;
    req->seen_us = now_us();
    size_t a = api_index(req->api_key);
    size_t v = req->api_version >= 0 && req->api_version < KMETRICS_VER_MAX ? (size_t)req->api_version
                                                                            : KMETRICS_VER_MAX;
    if (m->req[a] == NULL && (m->req[a] = calloc(KMETRICS_VER_MAX + 1, sizeof *m->req[a])) == NULL)
        return;
    if (m->req[a][v] == NULL) {
        char name[32], num[16], ver[16];
        api_labels(req->api_key, name, num);
        if (v == KMETRICS_VER_MAX)
            snprintf(ver, sizeof ver, "other");
        else
            snprintf(ver, sizeof ver, "%zu", v);
        m->req[a][v] = metrics_series(fam.requests, (const char *const[]){m->node, name, num, ver});
    }
    metrics_add(m->req[a][v], 1);
}

void kmetrics_response(kmetrics_node_t *m, const kf_req_t *req, int rewritten)
{
    if (rewritten) m->rewritten++;
    if (!metrics_enabled()) return;
    size_t a = api_index(req->api_key);
    if (m->lat[a] == NULL) {
        char name[32], num[16];
        api_labels(req->api_key, name, num);
        m->lat[a] = metrics_series(fam.latency, (const char *const[]){m->node, name, num});
    }
    metrics_observe_us(m->lat[a], (uint32_t)(now_us() - req->seen_us));
}
