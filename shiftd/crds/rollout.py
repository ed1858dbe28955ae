"""argoproj.io/v1alpha1 Rollout: the structural schema of its spec and status.

Closed (every Argo field, Argo's types) from the spec down to the canary strategy, its steps,
its analysis and the Istio traffic routing shiftd drives; and the whole status, which shiftd
writes. Open: the pod template (copied verbatim into ReplicaSets), the blue-green strategy,
the other traffic routers and step kinds shiftd does not run (experiments, plugins), which
are kept as written. See ``shiftd.crds.schema`` for the two kinds of node.
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


def label_selector() -> Schema:
    requirement = closed({"key": string(), "operator": string(),
                          "values": array(string(), atomic=True)},
                         required=("key", "operator"))
    return closed({"matchLabels": string_map(),
                   "matchExpressions": array(requirement, atomic=True)})


def analysis_run_metadata() -> Schema:
    return closed({"labels": string_map(), "annotations": string_map()})


def rollout_analysis(*, background: bool) -> Schema:
    """``canary.analysis`` (background, with ``startingStep``) or a step's ``analysis``."""
    value_from = closed({
        "podTemplateHashValue": string(),
        "fieldRef": closed({"fieldPath": string()}, required=("fieldPath",)),
    })
    fields: Schema = {
        "templates": array(closed({"templateName": string(), "clusterScope": boolean()})),
        "args": array(closed({"name": string(), "value": string(), "valueFrom": value_from},
                             required=("name",))),
        "dryRun": array(closed({"metricName": string()}, required=("metricName",))),
        "measurementRetention": array(closed({"metricName": string(), "limit": int32()},
                                             required=("limit", "metricName"))),
        "analysisRunMetadata": analysis_run_metadata(),
    }
    if background:
        fields["startingStep"] = int32("The step index at which background analysis starts.")
    return closed(fields)


def string_match() -> Schema:
    """Argo's StringMatch (header and mirror routes): one of exact, prefix, regex."""
    return closed({"exact": string(), "prefix": string(), "regex": string()})


def canary_step() -> Schema:
    return closed({
        "setWeight": int32("Percentage of traffic to the canary."),
        "pause": closed({"duration": int_or_string("Seconds, or a duration like 30s; "
                                                   "absent: until promoted.")}),
        "setCanaryScale": closed({"replicas": int32(), "weight": int32(),
                                  "matchTrafficWeight": boolean()}),
        "analysis": rollout_analysis(background=False),
        "experiment": open_(required=("templates",)),
        "setHeaderRoute": closed({"name": string(), "match": array(closed({
            "headerName": string(), "headerValue": string_match()},
            required=("headerName", "headerValue")))}),
        "setMirrorRoute": closed({"name": string(), "percentage": int32(), "match": array(
            closed({"method": string_match(), "path": string_match(),
                    "headers": {"type": "object", "additionalProperties": string_match()}}))},
            required=("name",)),
        "plugin": closed({"name": string(), "config": open_()}, required=("name",)),
    })


def istio_routing() -> Schema:
    virtual_service = closed({
        "name": string(),
        "routes": strings(),
        "tlsRoutes": array(closed({"port": int64(), "sniHosts": strings()})),
        "tcpRoutes": array(closed({"port": int64()})),
    }, required=("name",))
    return closed({
        "virtualService": virtual_service,
        "virtualServices": array(virtual_service),
        "destinationRule": closed({
            "name": string(), "canarySubsetName": string(), "stableSubsetName": string(),
            "additionalSubsetNames": strings(),
        }, required=("canarySubsetName", "name", "stableSubsetName")),
    })


def traffic_routing() -> Schema:
    return closed({
        "istio": istio_routing(),
        "maxTrafficWeight": int32(),
        "managedRoutes": array(closed({"name": string()}, required=("name",))),
        "plugins": open_(),
        # Routers shiftd does not drive: kept as written.
        "alb": open_(required=("servicePort",)),
        "ambassador": open_(required=("mappings",)),
        "apisix": open_(),
        "appMesh": open_(),
        "nginx": open_(),
        "smi": open_(),
        "traefik": open_(required=("weightedTraefikServiceName",)),
    })


def canary_strategy() -> Schema:
    return closed({
        "canaryService": string(), "stableService": string(),
        "steps": array(canary_step()),
        "trafficRouting": traffic_routing(),
        "maxSurge": int_or_string(), "maxUnavailable": int_or_string(),
        "scaleDownDelaySeconds": int32(), "abortScaleDownDelaySeconds": int32(),
        "scaleDownDelayRevisionLimit": int32(), "minPodsPerReplicaSet": int32(),
        "dynamicStableScale": boolean(),
        "analysis": rollout_analysis(background=True),
        "canaryMetadata": metadata_labels(), "stableMetadata": metadata_labels(),
        "antiAffinity": open_(),
        "pingPong": closed({"pingService": string(), "pongService": string()},
                           required=("pingService", "pongService")),
        "replicaProgressThreshold": closed({"type": string(), "value": int32()},
                                           required=("type", "value")),
    })


def rollout_spec() -> Schema:
    return closed({
        "replicas": int32(), "selector": label_selector(),
        "template": closed({"metadata": metadata_labels(),
                            "spec": open_(required=("containers",))}),
        "workloadRef": closed({"apiVersion": string(), "kind": string(), "name": string(),
                               "scaleDown": string()}),
        "minReadySeconds": int32(), "revisionHistoryLimit": int32(),
        "paused": boolean("Paused by a human: no step advances."),
        "progressDeadlineSeconds": int32(), "progressDeadlineAbort": boolean(),
        "restartAt": timestamp(),
        "rollbackWindow": closed({"revisions": int32()}),
        "analysis": closed({"successfulRunHistoryLimit": int32(),
                            "unsuccessfulRunHistoryLimit": int32()}),
        "strategy": closed({"canary": canary_strategy(), "blueGreen": open_()}),
    })


def _run_status() -> Schema:
    return closed({"name": string(), "status": string(), "message": string()},
                  required=("name", "status"))


def _weight_destination(*, required: tuple[str, ...]) -> Schema:
    return closed({"weight": int32(), "serviceName": string(), "podTemplateHash": string()},
                  required=required)


def canary_status() -> Schema:
    weights = closed({
        "canary": _weight_destination(required=("weight",)),
        "stable": _weight_destination(required=("weight",)),
        "additional": array(_weight_destination(required=("weight",))),
        "verified": boolean(),
    }, required=("canary", "stable"))
    return closed({
        "currentStepAnalysisRunStatus": _run_status(),
        "currentBackgroundAnalysisRunStatus": _run_status(),
        "currentExperiment": string(),
        "weights": weights,
        "stablePingPong": string(),
        "stepPluginStatuses": array(open_()),
    })


def rollout_status() -> Schema:
    condition = closed({
        "type": string(), "status": string(), "reason": string(), "message": string(),
        "lastUpdateTime": timestamp(), "lastTransitionTime": timestamp(),
    }, required=("lastTransitionTime", "lastUpdateTime", "message", "reason", "status", "type"))
    return closed({
        "phase": string(), "message": string(), "abort": boolean(), "abortedAt": timestamp(),
        "controllerPause": boolean(), "promoteFull": boolean(),
        "pauseConditions": array(closed({"reason": string(), "startTime": timestamp()},
                                        required=("reason", "startTime"))),
        "currentPodHash": string(), "currentStepHash": string(), "currentStepIndex": int32(),
        "stableRS": string(), "observedGeneration": string(),
        "workloadObservedGeneration": string(), "restartedAt": timestamp(),
        "replicas": int32(), "updatedReplicas": int32(), "readyReplicas": int32(),
        "availableReplicas": int32(), "HPAReplicas": int32(), "selector": string(),
        "collisionCount": int32(),
        "conditions": array(condition),
        "canary": canary_status(),
        "duration": closed({
            "completionStatus": string(), "finishedAt": timestamp(),
            "manualPauseStartedAt": timestamp(), "rolloutStartedAt": timestamp(),
            "totalManualPauseDurationSeconds": int64(),
        }),
        "blueGreen": open_(), "alb": open_(), "albs": array(open_()),
    })
