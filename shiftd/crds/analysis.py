"""argoproj.io/v1alpha1 AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun schemas.

Closed: the template and run specs, a metric's fields, the Prometheus and web providers shiftd
measures with (authentication included), and the run's whole status, which shiftd writes.
Open: the providers shiftd does not measure with (a run using one fails with a message, as
the analysis controller says) and a Job metric's spec. See ``shiftd.crds.schema``.
"""

from __future__ import annotations

from shiftd.crds.schema import (
    Schema,
    array,
    boolean,
    closed,
    int32,
    int64,
    int_or_string,
    metadata_labels,
    open_,
    string,
    string_map,
    strings,
    timestamp,
)

PROVIDERS_NOT_MEASURED = ("cloudWatch", "datadog", "graphite", "influxdb", "kayenta",
                          "newRelic", "wavefront")


def argument() -> Schema:
    value_from = closed({
        "secretKeyRef": closed({"name": string(), "key": string()}, required=("key", "name")),
        "fieldRef": closed({"fieldPath": string()}, required=("fieldPath",)),
    })
    return closed({"name": string(), "value": string(), "valueFrom": value_from},
                  required=("name",))


def authentication() -> Schema:
    return closed({
        "basicAuth": closed({"username": string(), "password": string()}),
        "oauth2": closed({"tokenUrl": string(), "clientId": string(), "clientSecret": string(),
                          "scopes": strings()}),
        "sigv4": closed({"region": string(), "profile": string(), "roleArn": string()}),
    })


def headers() -> Schema:
    return array(closed({"key": string(), "value": string()}, required=("key", "value")))


def provider() -> Schema:
    fields: Schema = {
        "prometheus": closed({
            "address": string(), "query": string(), "timeout": int64(),
            "insecure": boolean(), "headers": headers(), "authentication": authentication(),
            "rangeQuery": closed({"start": string(), "end": string(), "step": string()}),
        }),
        "web": closed({
            "url": string(), "method": string(), "headers": headers(), "body": string(),
            "jsonBody": open_(), "jsonPath": string(), "timeoutSeconds": int64(),
            "insecure": boolean(), "authentication": authentication(),
        }, required=("url",)),
        "skywalking": closed({"address": string(), "query": string(), "interval": string()}),
        "job": closed({"metadata": metadata_labels(), "spec": open_(required=("template",))},
                      required=("spec",)),
        "plugin": open_(),
    }
    fields.update({name: open_() for name in PROVIDERS_NOT_MEASURED})
    return closed(fields)


def metric() -> Schema:
    return closed({
        "name": string(), "provider": provider(),
        "interval": string(), "initialDelay": string(), "count": int_or_string(),
        "successCondition": string(), "failureCondition": string(),
        "failureLimit": int_or_string(), "inconclusiveLimit": int_or_string(),
        "consecutiveErrorLimit": int_or_string(), "consecutiveSuccessLimit": int_or_string(),
    }, required=("name", "provider"))


def _shared_spec() -> Schema:
    return {
        "metrics": array(metric()),
        "args": array(argument()),
        "dryRun": array(closed({"metricName": string()}, required=("metricName",))),
        "measurementRetention": array(closed({"metricName": string(), "limit": int32()},
                                             required=("limit", "metricName"))),
    }


def template_spec() -> Schema:
    """AnalysisTemplate and ClusterAnalysisTemplate (``templates`` composes others)."""
    return closed({
        **_shared_spec(),
        "templates": array(closed({"templateName": string(), "clusterScope": boolean()})),
    })


def run_spec() -> Schema:
    return closed({
        **_shared_spec(),
        "terminate": boolean("Set to stop the run; shiftd sets it on an aborted Rollout."),
        "ttlStrategy": closed({"secondsAfterCompletion": int32(),
                               "secondsAfterFailure": int32(),
                               "secondsAfterSuccess": int32()}),
    }, required=("metrics",))


def _summary() -> Schema:
    return closed({name: int32() for name in
                   ("count", "successful", "failed", "inconclusive", "error")})


def run_status() -> Schema:
    measurement = closed({
        "phase": string(), "message": string(), "value": string(),
        "startedAt": timestamp(), "finishedAt": timestamp(), "resumeAt": timestamp(),
        "metadata": string_map(),
    }, required=("phase",))
    result = closed({
        "name": string(), "phase": string(), "message": string(), "dryRun": boolean(),
        "measurements": array(measurement), "metadata": string_map(),
        **{name: int32() for name in ("count", "successful", "failed", "inconclusive",
                                      "error", "consecutiveError", "consecutiveSuccess")},
    }, required=("name", "phase"))
    return closed({
        "phase": string(), "message": string(),
        "startedAt": timestamp(), "completedAt": timestamp(),
        "metricResults": array(result),
        "runSummary": _summary(), "dryRunSummary": _summary(),
    }, required=("phase",))
