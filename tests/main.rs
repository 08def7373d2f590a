//! barge's integration tests, as one test binary: each file under `tests/`
//! is a module here, so the crate is linked once rather than once per file.
//! `tests/run.sh` starts the servers they need; run one area with a filter,
//! for example `bash tests/run.sh migrate::` or `cargo nextest run cdc_ddl::`.

mod support;

mod advise;
mod cdc;
mod cdc_ddl;
mod cdc_faults;
mod cdc_sinks;
mod cli;
mod convert_property;
mod coord_pack;
mod coord_scale;
mod coord_validate;
mod coord_streams;
mod convert_real_world;
mod convert_schema;
mod coordinator;
mod db_mysql;
mod examples_kubernetes;
mod hostile_input;
mod inputs;
mod layering;
mod migrate;
mod metrics;
mod migrate_objects;
mod pack;
mod pack_db;
mod pack_s3;
mod progress_terminal;
mod records_changes;
mod records_files;
mod records_kafka;
mod records_kinesis;
mod records_mqtt;
mod records_sqs;
mod records_tail;
mod report_html;
mod sink_kafka;
mod sink_kinesis;
mod sink_null;
mod sink_object;
mod sink_partitions;
mod sink_sqs;
mod snapshots;
mod sql_in_flight;
mod sql_load;
mod state;
mod status_watch;
mod validate;
