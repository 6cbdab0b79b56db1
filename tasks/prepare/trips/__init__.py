"""Trip history in: read trip files, count trips per day or hour, join weather and calendar.

Pure logic without Prefect: ``layouts`` (the two header layouts), ``files`` (finding and
opening .csv, .csv.gz and .zip files), ``aggregate`` (one file's counts, streamed in chunks),
``calendar`` (season, holidays, working days as the UCI files have them), ``weather`` (the
weather table, normalised as the UCI Readme) and ``assemble`` (the rows in the UCI layout).
"""
