-- The customers a backtest cut-off learns from: the first $sample_rows buyers known on
-- $as_of_date (the cut-off), in the order of a hash of their id and the date, so that
-- each cut-off draws its own sample and a re-run draws the same one. The risk fit builds
-- lifecycle_features and risk_labels for these customers only: every feature and label
-- is one customer's own, so they are those of a run over everyone, sampled afterwards.
-- Inputs (views): customer_segments (as of the cut-off).

with

buyers as (

    select customer_id
    from customer_segments
    where last_purchase_date is not null

),

final as (

    select customer_id
    from buyers
    order by hash(customer_id, $as_of_date::date), customer_id
    limit $sample_rows

)

select * from final
