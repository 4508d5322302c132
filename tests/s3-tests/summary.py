"""Counts s3-tests' results and checks every failure against the known list (with reasons).

Exit status 1 when a test fails that the list does not name (a regression); a listed test that
passes is reported so that the list can shrink."""
import sys
import xml.etree.ElementTree as ET

results, known_path, extra_args = sys.argv[1], sys.argv[2], int(sys.argv[3])
passed, failed, skipped = [], [], []
for case in ET.parse(results).getroot().iter("testcase"):
    name = case.get("name")
    if case.find("failure") is not None or case.find("error") is not None:
        failed.append(name)
    elif case.find("skipped") is not None:
        skipped.append(name)
    else:
        passed.append(name)
total = len(passed) + len(failed) + len(skipped)
print(f"s3-tests: {len(passed)} of {total} passed ({len(failed)} failed, {len(skipped)} skipped)")
known = {}
for line in open(known_path):
    line = line.strip()
    if line and not line.startswith("#"):
        name, _, reason = line.partition(" ")
        known[name] = reason.strip()
unexpected = sorted(set(failed) - set(known))
fixed = sorted(set(passed) & set(known))
with open(results.rsplit("/", 1)[0] + "/failures.txt", "w") as f:
    f.write("\n".join(sorted(failed)) + "\n")
if fixed:
    print(f"{len(fixed)} tests in known-failures.txt now pass: " + " ".join(fixed))
if unexpected:
    print(f"{len(unexpected)} failures not in known-failures.txt:")
    for name in unexpected:
        print("  " + name)
    # A subset run (extra pytest arguments) reports but does not judge.
    sys.exit(1 if extra_args == 0 else 0)
