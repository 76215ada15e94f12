"""Files in, store out: where data enters, how it is checked and converted, where it is stored.

The data layer, in the order data flows through it:

:mod:`~analysis.data.schema`
    the data contract: the canonical ``panel`` and ``postings`` tables, column by column,
    and which columns a file must have (``data/README.md`` is generated from it);
:mod:`~analysis.data.readers`
    files in: one reader for CSV, XLSX and Parquet, canonical and bureau files alike;
:mod:`~analysis.data.canonical`
    a canonical file's header: which table, which column is which;
:mod:`~analysis.data.bureau`
    files as the statistics bureau and the organisation department send them: header
    mappings, header detection, subtotal rows, units and numbers, dates, unit types,
    village-code crosswalks;
:mod:`~analysis.data.validate`
    every value checked against the data contract (a pandera schema generated from it);
:mod:`~analysis.data.consistency`
    the files of one ingest checked against each other and against the store;
:mod:`~analysis.data.problems`
    what is wrong and what to do, in English and Chinese, and the error reports (every
    problem, written so that no cell opens as a formula);
:mod:`~analysis.data.ingest`
    the ingest: the steps above in order, then the store, or nothing at all (a stored
    year is changed only when asked to);
:mod:`~analysis.data.store`
    the DuckDB store: the only code that writes it (atomic, locked, with history), and
    what an ingest would change in it;
:mod:`~analysis.data.synthetic`
    the calibrated synthetic city with its known truth (``study simulate``);
:mod:`~analysis.data.examples`
    the worked example of a new year in bureau formats, made by the simulator.
"""
