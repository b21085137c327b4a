#!/usr/bin/python3
"""Patches librdkafka 2.15.1's mock broker (the test cluster, never shipped)
so that Fetch reports aborted transactions to read_committed consumers.

The mock records each aborted transaction's range per partition (for its
ShareFetch path) but answers every Fetch with an empty AbortedTransactions
list, so no client can filter aborted records against it. This fills the
list from what the mock already records. Idempotent.

    mock_aborted_txns.py path/to/librdkafka/src/rdkafka_mock_handlers.c
"""
import sys

OLD = """                        if (rkbuf->rkbuf_reqhdr.ApiVersion >= 4) {
                                /* Response: #Aborted */
                                rd_kafka_buf_write_arraycnt(resp, 0);
                        }
"""
NEW = """                        if (rkbuf->rkbuf_reqhdr.ApiVersion >= 4) {
                                /* Response: #Aborted (bore test rig patch:
                                 * the aborted transactions, for
                                 * read_committed consumers) */
                                rd_kafka_mock_aborted_txn_t *bore_ab;
                                int bore_cnt = 0;
                                if (mpart && IsolationLevel == 1)
                                        TAILQ_FOREACH(bore_ab, &mpart->aborted_txns, link)
                                                bore_cnt++;
                                rd_kafka_buf_write_arraycnt(resp, bore_cnt);
                                if (bore_cnt > 0)
                                        TAILQ_FOREACH(bore_ab, &mpart->aborted_txns, link) {
                                                rd_kafka_buf_write_i64(resp, bore_ab->pid_id);
                                                rd_kafka_buf_write_i64(resp, bore_ab->first_offset);
                                                rd_kafka_buf_write_tags_empty(resp);
                                        }
                        }
"""

path = sys.argv[1]
src = open(path).read()
if NEW in src:
    sys.exit(0)
if src.count(OLD) != 1:
    sys.exit(f"{path}: the Fetch #Aborted block was not found exactly once")
open(path, "w").write(src.replace(OLD, NEW))
