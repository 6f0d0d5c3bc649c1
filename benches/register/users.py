#!/usr/bin/env python3
"""The benchmark phones of scripts/bench-register, written three ways.

usage: users.py COUNT REALM DIR

DIR/users.toml   sbc's users file: number, username, ha1_md5 only (so sbc
                 challenges with MD5 alone, the one algorithm SIPp answers)
DIR/users.csv    SIPp's -inf file (SEQUENTIAL): username, then SIPp's
                 [authentication username=... password=...] keyword (SIPp
                 expands a keyword read from the file; a [fieldN] inside the
                 scenario's own [authentication] is not expanded)
DIR/dbtext/ha1   Kamailio's htable "ha1" as a db_text table (key = username,
                 value = the same HA1), with DIR/dbtext/version

User i (1-based): username p000001..., number +4930 followed by i on
7 digits, password bench-pw-i. HA1 = MD5(username:realm:password).
"""
import hashlib
import os
import sys


def main() -> None:
    count, realm, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.makedirs(os.path.join(out, "dbtext"), exist_ok=True)
    with open(os.path.join(out, "users.toml"), "w") as toml, \
            open(os.path.join(out, "users.csv"), "w") as csv, \
            open(os.path.join(out, "dbtext", "ha1"), "w") as db:
        csv.write("SEQUENTIAL\n")
        db.write("id(int,auto) key_name(string) key_type(int) value_type(int) "
                 "key_value(string) expires(int)\n")
        for i in range(1, count + 1):
            user, pw = f"p{i:06d}", f"bench-pw-{i}"
            ha1 = hashlib.md5(f"{user}:{realm}:{pw}".encode()).hexdigest()
            toml.write(f'[[user]]\nnumber = "+4930{i:07d}"\nusername = "{user}"\n'
                       f'ha1_md5 = "{ha1}"\n\n')
            csv.write(f"{user};[authentication username={user} password={pw}]\n")
            db.write(f"{i}:{user}:0:0:{ha1}:0\n")
    with open(os.path.join(out, "dbtext", "version"), "w") as v:
        v.write("table_name(string) table_version(int)\nha1:2\n")


if __name__ == "__main__":
    main()
