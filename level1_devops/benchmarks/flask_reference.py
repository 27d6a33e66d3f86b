"""The course's level-1 web service, for the benchmark only (not part of the product).

DataTalksClub mlops-zoomcamp ``04-deployment/web-service/predict.py``: a Flask app that
unpickles ``(DictVectorizer, LinearRegression)`` and predicts one ride per request. Served by
gunicorn with the same number of workers as the FastAPI service. The pickle path comes from
``REFERENCE_MODEL`` (written by ``bench_service.py`` from the same January data).

Run: ``REFERENCE_MODEL=lin_reg.bin gunicorn --bind 127.0.0.1:9696 flask_reference:app``
"""

import os
import pickle

from flask import Flask, jsonify, request

with open(os.environ.get("REFERENCE_MODEL", "lin_reg.bin"), "rb") as f_in:  # noqa: PTH123
    (dv, model) = pickle.load(f_in)


def prepare_features(ride):
    features = {}
    features["PU_DO"] = "{}_{}".format(ride["PULocationID"], ride["DOLocationID"])
    features["trip_distance"] = ride["trip_distance"]
    return features


def predict(features):
    X = dv.transform(features)
    preds = model.predict(X)
    return float(preds[0])


app = Flask("duration-prediction")


@app.route("/predict", methods=["POST"])
def predict_endpoint():
    ride = request.get_json()

    features = prepare_features(ride)
    pred = predict(features)

    result = {"duration": pred}

    return jsonify(result)
