/* describe_cluster.c - the admin DescribeCluster call of librdkafka 2.15,
 * as a tool: prints the brokers it was told about as one JSON line.
 *
 *   describe_cluster BOOTSTRAP   ->  {"nodes":[{"id":1,"host":"...","port":9092}],"controller":1}
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: describe_cluster BOOTSTRAP\n");
        return 2;
    }
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER);
    rd_kafka_AdminOptions_set_request_timeout(opt, 20000, err, sizeof err);
    rd_kafka_DescribeCluster(rk, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 1;
    if (ev == NULL) {
        fprintf(stderr, "no result\n");
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "DescribeCluster: %s\n", rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_DescribeCluster_result_t *res = rd_kafka_event_DescribeCluster_result(ev);
        size_t n;
        const rd_kafka_Node_t **nodes = rd_kafka_DescribeCluster_result_nodes(res, &n);
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, json_pack("{s:i,s:s,s:i}", "id", rd_kafka_Node_id(nodes[i]),
                                                  "host", rd_kafka_Node_host(nodes[i]), "port",
                                                  rd_kafka_Node_port(nodes[i])));
        const rd_kafka_Node_t *ctl = rd_kafka_DescribeCluster_result_controller(res);
        json_t *out = json_pack("{s:o,s:i}", "nodes", list, "controller", ctl ? rd_kafka_Node_id(ctl) : -1);
        char *s = json_dumps(out, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(out);
        rc = 0;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
