# Entry point: Snakemake finds ./Snakefile before workflow/Snakefile, so this shim is the only
# top-level file; the workflow itself lives in workflow/.
include: "workflow/Snakefile"
