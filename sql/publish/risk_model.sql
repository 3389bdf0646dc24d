-- Published risk_model: the risk model in force on $as_of_date (its version, horizon and
-- thresholds, or why the young lake's fallback stands in) and how it was judged: on its
-- own validation cut-off, and by the newest backtest of the pipeline's own past output.
-- Grain: as_of_date.
-- Input: the view lake_risk_model (the date's lake partition).

with

model as (

    select * from lake_risk_model

),

final as (

    select * from model

)

select * from final
