# latentage: PGGAN of pediatric hand radiographs and the bone-age structure of its latent
# space (README.md). Rules live in workflow/rules/, logic in the `latentage` package.
from snakemake.utils import min_version

min_version("9")


configfile: "config.yaml"


# With --sdm apptainer every rule runs in this image (build it first: README, "Software on
# the cluster"); with --sdm conda each rule in its envs/*.yaml.
container: "containers/latentage.sif"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/cnn.smk"
include: "workflow/rules/latent.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
