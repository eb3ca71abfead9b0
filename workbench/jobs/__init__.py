"""Running a rater over the items it has not rated yet: plan, dry run, job rows, committing results.

The runner takes what a run needs (a RaterRun: name, options, the study's
dimensions, the folder its files are in), never the loaded study, and hands
the items to the rater's backend (raters/backend.py) without asking which one
it is. study/ imports jobs/, never the reverse.
"""
