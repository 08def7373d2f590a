"""Reads back what barge wrote, with clients independent of barge, and
prints one JSON document for the Rust tests to compare with the source.

  read_sink.py files DIR            every file under DIR (local)
  read_sink.py s3 BUCKET PREFIX     every object under s3://BUCKET/PREFIX (boto3; endpoint from
                                    BARGE_TEST_S3_ENDPOINT)
  read_sink.py kinesis STREAM       every record of every shard (boto3), KPL aggregates
                                    de-aggregated with aws-kinesis-agg
  read_sink.py kafka TOPIC          every message of every partition (kafka-python)

Output: {"files": {relative path: {"format", "compression", "columns": [[name, type]], "rows": [...]}},
         "records": [...]} with every value as canonical text: decimals with all their digits
(Decimal, never float), timestamps ISO 8601 with their zone, bytes as hex.
"""
import base64, csv, datetime, decimal, gzip, io, json, os, sys, uuid


def canon(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    return str(v)


def decompress(name, data):
    if name.endswith(".gz"):
        return gzip.decompress(data), "gzip"
    if name.endswith(".snappy"):
        return snappy_frames(data), "snappy"
    return data, "none"


def snappy_frames(data):
    # The snappy framing format, chunk by chunk, with pyarrow's raw snappy codec.
    out = bytearray()
    i = 0
    import pyarrow as pa
    codec = pa.Codec("snappy")
    while i < len(data):
        kind = data[i]
        n = int.from_bytes(data[i + 1:i + 4], "little")
        body = data[i + 4:i + 4 + n]
        i += 4 + n
        if kind == 0x00:  # compressed chunk: 4-byte CRC, then raw snappy
            raw = body[4:]
            # the uncompressed length is the varint at the start of a raw snappy block
            length, shift, j = 0, 0, 0
            while True:
                b = raw[j]
                length |= (b & 0x7F) << shift
                j += 1
                if b < 0x80:
                    break
                shift += 7
            out += codec.decompress(raw, decompressed_size=length).to_pybytes()
        elif kind == 0x01:  # uncompressed chunk
            out += body[4:]
    return bytes(out)


def zstd_decompress(data):
    import pyarrow as pa
    # pyarrow's zstd codec needs the size; frames written by a streaming encoder may not carry it,
    # so read through an input stream instead.
    with pa.input_stream(pa.py_buffer(data), compression="zstd") as s:
        return s.read()


def read_file(name, data):
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq
        t = pq.read_table(io.BytesIO(data))
        cols = [[f.name, str(f.type)] for f in t.schema]
        md = pq.ParquetFile(io.BytesIO(data)).metadata
        codec = md.row_group(0).column(0).compression if md.num_row_groups else "NONE"
        logical = [str(md.schema.column(i).logical_type) for i in range(md.num_columns)]
        rows = [[canon(r[c]) for c in t.column_names] for r in t.to_pylist()]
        return {"format": "parquet", "compression": codec, "columns": cols, "logical": logical, "rows": rows}
    if name.endswith(".zst"):
        raw, comp = zstd_decompress(data), "zstd"
    else:
        raw, comp = decompress(name, data)
    text = raw.decode("utf-8")
    if ".csv" in name:
        rows = list(csv.reader(io.StringIO(text, newline="")))
        return {"format": "csv", "compression": comp, "columns": [[c, "text"] for c in rows[0]], "rows": rows[1:], "crlf": text.endswith("\r\n")}
    lines = [json.loads(l, parse_float=decimal.Decimal, parse_int=decimal.Decimal) for l in text.splitlines() if l]
    return {"format": "jsonl", "compression": comp, "rows": [canon(l) for l in lines]}


def main():
    mode = sys.argv[1]
    out = {"files": {}, "records": []}
    if mode == "files":
        root = sys.argv[2]
        for d, _, fs in os.walk(root):
            for f in fs:
                p = os.path.join(d, f)
                rel = os.path.relpath(p, root)
                data = open(p, "rb").read()
                out["files"][rel] = read_file(rel, data) if "errors/" not in rel else {"lines": [json.loads(l) for l in data.decode().splitlines()]}
    elif mode == "s3":
        import boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["BARGE_TEST_S3_ENDPOINT"])
        bucket, prefix = sys.argv[2], sys.argv[3]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                data = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                rel = o["Key"][len(prefix):].lstrip("/")
                out["files"][rel] = read_file(rel, data) if "errors/" not in rel else {"lines": [json.loads(l) for l in data.decode().splitlines()]}
    elif mode == "kinesis":
        import boto3
        from aws_kinesis_agg.deaggregator import deaggregate_records
        k = boto3.client("kinesis", endpoint_url=os.environ["BARGE_TEST_KINESIS_ENDPOINT"])
        stream = sys.argv[2]
        shards = k.list_shards(StreamName=stream)["Shards"]
        for s in shards:
            it = k.get_shard_iterator(StreamName=stream, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                r = k.get_records(ShardIterator=it, Limit=10000)
                recs = r["Records"]
                # aws-kinesis-agg takes records in the Lambda event shape
                lam = [{"kinesis": {"data": base64.b64encode(x["Data"]).decode(), "partitionKey": x["PartitionKey"],
                                    "sequenceNumber": x["SequenceNumber"], "kinesisSchemaVersion": "1.0",
                                    "approximateArrivalTimestamp": 0}} for x in recs]
                for x in deaggregate_records(lam):
                    body = json.loads(base64.b64decode(x["kinesis"]["data"]), parse_float=decimal.Decimal)
                    out["records"].append({"shard": s["ShardId"], "key": x["kinesis"]["partitionKey"],
                                           "aggregated": "subSequenceNumber" in x["kinesis"], "body": canon(body)})
                if not recs and r.get("MillisBehindLatest", 0) == 0:
                    break
                it = r.get("NextShardIterator")
    elif mode == "kafka":
        from kafka import KafkaConsumer, TopicPartition
        topic = sys.argv[2]
        c = KafkaConsumer(bootstrap_servers=os.environ["BARGE_TEST_KAFKA_BROKER"], enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=3000, fetch_max_wait_ms=100)
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        # The end offsets are a lower bound only (tansu's in-memory storage
        # reports fewer than it holds): read past them until three polls in
        # a row come back empty. One short empty poll is not enough on a
        # loaded machine: the fetch answer can simply arrive after it.
        end = c.end_offsets(parts)
        done = {tp: c.position(tp) >= end[tp] for tp in parts}
        empty = 0
        while True:
            batch = c.poll(timeout_ms=1000)
            empty = 0 if batch else empty + 1
            if empty >= 3 and all(done.values()):
                break
            for tp, msgs in batch.items():
                for m in msgs:
                    out["records"].append({"partition": m.partition, "offset": m.offset, "key": m.key.decode() if m.key else None,
                                           "headers": {k: v.decode() for k, v in m.headers},
                                           "body": canon(json.loads(m.value, parse_float=decimal.Decimal))})
                done[tp] = c.position(tp) >= end[tp]
        c.close()
    json.dump(out, sys.stdout, sort_keys=True)


main()
# pyarrow's thread pools can abort while the interpreter tears down
# ("terminate called without an active exception") after everything was
# printed; skip the teardown.
sys.stdout.flush()
os._exit(0)
