"""Seeds a fresh server for scripts/schemathesis.sh; prints "<admin token> <submission id>"."""
import json
import sys
import urllib.request
import uuid

base, password = sys.argv[1], sys.argv[2]


def call(method, path, body, token=None):
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


token = call("POST", "/api/v1/auth/login", {"username": "admin", "password": password})["access_token"]
# The account PATCH /api/v1/users/{username} may change at will (never the admin in use).
call("POST", "/api/v1/users", {"username": "fuzz-target", "password": "fuzz-target-pw",
                                "role": "field_worker", "display_name": "fuzzing target"}, token)
with open("tests/fixtures/household.json", encoding="utf-8") as fixture:
    household = json.load(fixture)
submission = str(uuid.uuid4())
call("POST", "/api/v1/forms/labour-survey/submissions", {"id": submission, "data": household}, token)
print(token, submission)
