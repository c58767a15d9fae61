#!/usr/bin/env python3
"""Writes the import bench's CSV (platform/benches/import.rs) for `rapport import`, so the
import can be timed through the CLI on either backend:

    python3 tests/bench/contacts_csv.py /tmp/contacts.csv [rows]
"""
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "contacts.csv"
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus"]
last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman"]
cities = ["Berlin", "Kraków", "Boston", "Lyon", "Toronto"]
countries = ["Germany", "Poland", "United States", "France", "Canada"]
with open(out, "w", encoding="utf-8") as w:
    w.write("Email,First Name,Last Name,Phone,Company,City,Country,Status\n")
    for i in range(rows):
        # Every tenth contact has the previous one's phone number, written another way.
        if i % 10 == 9:
            phone = "555-%03d-%04d" % ((i - 1) // 10_000 % 1000, (i - 1) % 10_000)
        else:
            phone = "+1 555 %07d" % i
        w.write(
            "person%d@bench.example,%s,%s,%s,Company %d,%s,%s,lead\n"
            % (i, first[i % 8], last[i % 7], phone, i % 5000, cities[i % 5], countries[i % 5])
        )
