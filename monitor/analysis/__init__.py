"""Analysis: weekly aggregates, change detection, attribution, findings and their lifecycle; ``run`` is one analysis run."""
