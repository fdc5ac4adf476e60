"""A small Flask app. With --check it answers one request in-process and exits."""
import sys

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(service="acc-pyvenv", ok=True)


if __name__ == "__main__":
    if "--check" in sys.argv:
        resp = app.test_client().get("/")
        print(resp.status_code, resp.get_json())
        sys.exit(0 if resp.status_code == 200 else 1)
    app.run(host="0.0.0.0", port=8080)
