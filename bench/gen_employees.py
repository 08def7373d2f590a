#!/usr/bin/env python3
"""Writes an employees-style HR database for bench/mariadb-to-pg.sh
(SCHEMA=employees): six tables shaped like the well-known MySQL sample
(composite keys, DATE columns, an ENUM, foreign keys, a NULLable date),
with row counts close to its 3.9M rows at SCALE=100.

    gen_employees.py SCALE DIR   writes DIR/schema.sql and DIR/<table>.tsv

SCALE is a percentage of the full size: 100 gives 300,000 employees and
~3.9M rows in all; 1 gives ~39k rows for a smoke run. Deterministic (fixed
seed), so every run and every tool sees the same data. The TSV files are
in LOAD DATA's default format (tab-separated, \\N for NULL)."""
import datetime
import os
import random
import sys

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 100
out_dir = sys.argv[2] if len(sys.argv) > 2 else "."
rnd = random.Random(1985)

SCHEMA = """\
CREATE TABLE departments (
  dept_no   CHAR(4)     NOT NULL,
  dept_name VARCHAR(40) NOT NULL,
  PRIMARY KEY (dept_no),
  UNIQUE KEY dept_name (dept_name)
) ENGINE=InnoDB;
CREATE TABLE employees (
  emp_no     INT            NOT NULL,
  birth_date DATE           NOT NULL,
  first_name VARCHAR(14)    NOT NULL,
  last_name  VARCHAR(16)    NOT NULL,
  gender     ENUM('M','F')  NOT NULL,
  hire_date  DATE           NOT NULL,
  PRIMARY KEY (emp_no)
) ENGINE=InnoDB;
CREATE TABLE dept_emp (
  emp_no    INT     NOT NULL,
  dept_no   CHAR(4) NOT NULL,
  from_date DATE    NOT NULL,
  to_date   DATE    NOT NULL,
  PRIMARY KEY (emp_no, dept_no),
  KEY dept_no (dept_no),
  CONSTRAINT dept_emp_ibfk_1 FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE,
  CONSTRAINT dept_emp_ibfk_2 FOREIGN KEY (dept_no) REFERENCES departments (dept_no) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE dept_manager (
  emp_no    INT     NOT NULL,
  dept_no   CHAR(4) NOT NULL,
  from_date DATE    NOT NULL,
  to_date   DATE    NOT NULL,
  PRIMARY KEY (emp_no, dept_no),
  KEY dept_no (dept_no),
  CONSTRAINT dept_manager_ibfk_1 FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE,
  CONSTRAINT dept_manager_ibfk_2 FOREIGN KEY (dept_no) REFERENCES departments (dept_no) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE titles (
  emp_no    INT         NOT NULL,
  title     VARCHAR(50) NOT NULL,
  from_date DATE        NOT NULL,
  to_date   DATE,
  PRIMARY KEY (emp_no, title, from_date),
  CONSTRAINT titles_ibfk_1 FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE salaries (
  emp_no    INT  NOT NULL,
  salary    INT  NOT NULL,
  from_date DATE NOT NULL,
  to_date   DATE NOT NULL,
  PRIMARY KEY (emp_no, from_date),
  CONSTRAINT salaries_ibfk_1 FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE
) ENGINE=InnoDB;
"""

DEPARTMENTS = [
    ("d001", "Marketing"), ("d002", "Finance"), ("d003", "Human Resources"),
    ("d004", "Production"), ("d005", "Development"), ("d006", "Quality Management"),
    ("d007", "Sales"), ("d008", "Research"), ("d009", "Customer Service"),
]
# Weights roughly as the sample spreads its staff over departments.
DEPT_WEIGHTS = [20, 17, 17, 73, 85, 20, 52, 21, 23]
FIRST = ("Georgi Bezalel Parto Chirstian Kyoichi Anneke Tzvetan Saniya Sumant Duangkaew Mary Patricio "
         "Eberhardt Berni Guoxiang Kazuhito Cristinel Kazuhide Lillian Mayuko Ramzi Shahaf Bojan Suzette "
         "Prasadram Yongqiao Divier Domenick Otmar Elvis Karsten Jeong Arif Bader Alain Adamantios Pradeep "
         "Huan Alejandro Weiyi Uri Magy Yishay Mingsen Moss Lucien Zvonko Florian Basil Yinghua").split()
LAST = ("Facello Simmel Bamford Koblick Maliniak Preusig Zielinski Kalloufi Peac Piveteau Sluis Bridgland "
        "Terkki Genin Nooteboom Cappelletti Bouloucos Peha Haddadi Warwick Erde Famili Montemayor Pettey "
        "Heyers Berztiss Reistad Tempesti Herbst Demeyer Stamatiou Merlo Swan Lortz Brender Dolinsky "
        "Rosenbaum Garigliano Pettis Thibadeau Velasco Jullig Baek Kolvik Hofting Klassen Casley Pintelas").split()
TITLES_LADDER = [["Staff", "Senior Staff"], ["Engineer", "Senior Engineer"], ["Assistant Engineer", "Engineer", "Senior Engineer"],
                 ["Technique Leader"], ["Staff"], ["Engineer", "Senior Engineer", "Technique Leader"]]
FOREVER = datetime.date(9999, 1, 1)
LAST_DAY = datetime.date(2002, 8, 1)
BIRTH0, HIRE0 = datetime.date(1952, 2, 1), datetime.date(1985, 1, 1)


def day(d0, span):
    return d0 + datetime.timedelta(days=rnd.randrange(span))


def main():
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "schema.sql"), "w") as f:
        f.write(SCHEMA)
    n_emp = max(20, int(300_000 * scale / 100))
    files = {t: open(os.path.join(out_dir, f"{t}.tsv"), "w", buffering=1 << 20)
             for t in ("departments", "employees", "dept_emp", "dept_manager", "titles", "salaries")}
    w = {t: f.write for t, f in files.items()}
    for no, name in DEPARTMENTS:
        w["departments"](f"{no}\t{name}\n")
    dept_nos = [d for d, _ in DEPARTMENTS]
    managers = {d: [] for d in dept_nos}
    for emp_no in range(10001, 10001 + n_emp):
        birth = day(BIRTH0, 4750)
        hire = day(HIRE0, 5900)
        gender = "M" if rnd.random() < 0.6 else "F"
        w["employees"](f"{emp_no}\t{birth}\t{rnd.choice(FIRST)}\t{rnd.choice(LAST)}\t{gender}\t{hire}\n")
        # Leavers (~10%) stop some years after hiring; the rest are current.
        leaves = rnd.random() < 0.1
        end = min(LAST_DAY, hire + datetime.timedelta(days=rnd.randrange(365, 6000))) if leaves else FOREVER
        last = end if end != FOREVER else LAST_DAY
        # Departments: one, or (~10%) a move to a second one midway.
        first, second = rnd.choices(dept_nos, DEPT_WEIGHTS, k=2)
        if second != first and rnd.random() < 0.1 and (last - hire).days > 60:
            move = hire + datetime.timedelta(days=rnd.randrange(30, (last - hire).days - 20))
            w["dept_emp"](f"{emp_no}\t{first}\t{hire}\t{move}\n")
            w["dept_emp"](f"{emp_no}\t{second}\t{move}\t{end}\n")
        else:
            w["dept_emp"](f"{emp_no}\t{first}\t{hire}\t{end}\n")
        if len(managers[first]) < 3 and rnd.random() < 0.002:
            managers[first].append((emp_no, hire))
        # Titles: a ladder, with a promotion (~48%) to the next rung; the last
        # title of someone still employed has a NULL or the far-future end date.
        ladder = rnd.choice(TITLES_LADDER)
        if len(ladder) > 1 and rnd.random() < 0.48 and (last - hire).days > 400:
            promo = hire + datetime.timedelta(days=rnd.randrange(200, (last - hire).days - 100))
            w["titles"](f"{emp_no}\t{ladder[0]}\t{hire}\t{promo}\n")
            tail_start, title = promo, ladder[1]
        else:
            tail_start, title = hire, ladder[0]
        tail_end = end.isoformat() if end != FOREVER or rnd.random() < 0.7 else "\\N"
        w["titles"](f"{emp_no}\t{title}\t{tail_start}\t{tail_end}\n")
        # Salaries: one row a year from the hire date, with raises.
        salary = rnd.randrange(38_000, 75_000)
        start = hire
        while start < last:
            stop = min(start + datetime.timedelta(days=365), end)
            w["salaries"](f"{emp_no}\t{salary}\t{start}\t{stop if stop < last or end != FOREVER else FOREVER}\n")
            salary += rnd.randrange(0, 4000)
            start += datetime.timedelta(days=365)
    for d in dept_nos:
        if not managers[d]:
            managers[d].append((10001 + dept_nos.index(d), HIRE0))
        for emp_no, since in managers[d]:
            w["dept_manager"](f"{emp_no}\t{d}\t{since}\t{FOREVER}\n")
    for f in files.values():
        f.close()


main()
