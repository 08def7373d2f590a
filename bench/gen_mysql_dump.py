#!/usr/bin/env python3
"""Writes a mysqldump-style schema of N tables (default 5000) to stdout:
headers, conditional comments, DROP/CREATE TABLE with keys, foreign keys,
enums, unsigned ints, defaults, comments, and a few INSERTs."""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
rnd = random.Random(42)
out = sys.stdout.write
out("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: bench\n")
out("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n")
out("/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n\n")
types = [
    "int(11) NOT NULL DEFAULT '0'", "int(10) unsigned DEFAULT NULL", "bigint(20) unsigned NOT NULL",
    "varchar(255) NOT NULL DEFAULT ''", "varchar(64) DEFAULT NULL", "tinyint(1) NOT NULL DEFAULT '1'",
    "decimal(12,2) NOT NULL DEFAULT '0.00'", "datetime DEFAULT NULL", "timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP",
    "text", "enum('new','open','closed') NOT NULL DEFAULT 'new'", "double DEFAULT NULL", "date NOT NULL", "char(2) NOT NULL",
    "json DEFAULT NULL", "blob",
]
for i in range(n):
    t = f"table_{i:05d}"
    out(f"--\n-- Table structure for table `{t}`\n--\n\nDROP TABLE IF EXISTS `{t}`;\n")
    out("/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!50503 SET character_set_client = utf8mb4 */;\n")
    cols = ["  `id` int(10) unsigned NOT NULL AUTO_INCREMENT"]
    ncols = rnd.randint(6, 14)
    for c in range(ncols):
        cols.append(f"  `col_{c}` {rnd.choice(types)} COMMENT 'column {c} of {t}'")
    if i > 0:
        cols.append("  `parent_id` int(10) unsigned DEFAULT NULL")
    cols.append("  PRIMARY KEY (`id`)")
    cols.append(f"  KEY `idx_{t}_c0` (`col_0`)")
    cols.append(f"  KEY `idx_{t}_c1_c2` (`col_1`,`col_2`)")
    if i > 0:
        cols.append(f"  KEY `fk_{t}_parent` (`parent_id`)")
        cols.append(f"  CONSTRAINT `fk_{t}_parent` FOREIGN KEY (`parent_id`) REFERENCES `table_{rnd.randrange(i):05d}` (`id`) ON DELETE SET NULL")
    out(f"CREATE TABLE `{t}` (\n" + ",\n".join(cols) + f"\n) ENGINE=InnoDB AUTO_INCREMENT={rnd.randint(1, 99999)} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci COMMENT='table {i}';\n")
    out("/*!40101 SET character_set_client = @saved_cs_client */;\n\n")
    if i % 50 == 0:
        out(f"LOCK TABLES `{t}` WRITE;\nINSERT INTO `{t}` (`id`) VALUES (1),(2),(3);\nUNLOCK TABLES;\n\n")
out("/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n-- Dump completed\n")
