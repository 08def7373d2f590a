pub mod binlog;
pub mod binlog_ddl;
